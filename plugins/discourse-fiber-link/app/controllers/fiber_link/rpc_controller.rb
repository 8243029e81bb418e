# frozen_string_literal: true

module ::FiberLink
  # POST /fiber-link/rpc {method, params}: forwards an allow-list of methods to the Fiber Link
  # service. Logged-in users only; Discourse checks the CSRF token. The rules (which methods,
  # whose identities) live in FiberLink::RpcProxy.
  class RpcController < ::ApplicationController
    requires_plugin PLUGIN_NAME

    before_action :ensure_logged_in

    def create
      RateLimiter.new(current_user, "fiber-link-rpc", SiteSetting.fiber_link_rpc_rate_per_minute, 1.minute).performed!

      payload =
        begin
          JSON.parse(request.raw_post)
        rescue JSON::ParserError
          nil
        end
      unless payload.is_a?(Hash)
        return render json: { error: { code: -32_700, reason: "parse_error", message: "bad request body" } }
      end

      viewer = RpcProxy::Viewer.new(id: current_user.id.to_s, admin: current_user.admin?)
      status, body = FiberLink.proxy_for(guardian).call(viewer:, method: payload["method"].to_s,
                                                        params: payload["params"] || {})
      render json: body, status:
    end
  end
end
