import Service from "@ember/service";
import { ajax } from "discourse/lib/ajax";
import { normalizeError } from "../lib/fiber-link/errors";

// Calls the forum's proxy (POST /fiber-link/rpc), which signs and forwards to the Fiber Link
// service. Resolves with the method's result; rejects with an RpcFailure { code, reason }.
export default class FiberLinkService extends Service {
  async call(method, params = {}) {
    let body;
    try {
      body = await ajax("/fiber-link/rpc", {
        type: "POST",
        contentType: "application/json",
        data: JSON.stringify({ method, params }),
      });
    } catch (e) {
      throw normalizeError(e);
    }
    if (body?.error) {
      throw normalizeError(body);
    }
    return body?.result;
  }
}
