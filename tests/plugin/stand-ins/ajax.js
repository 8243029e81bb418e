// Stand-in for discourse/lib/ajax over fetch, with Discourse's rejection shape for non-2xx
// answers and for no answer at all: { jqXHR: { status, responseJSON }, textStatus, errorThrown }.
// `data` is sent as given when it is a string (the plugin's JSON bodies), and form-encoded when
// it is an object, as jQuery does (core's ConfirmSession posts { password } that way).
export async function ajax(url, { type = "GET", data, contentType } = {}) {
  let body = data;
  if (data && typeof data === "object") {
    body = new URLSearchParams(data).toString();
  }
  let response;
  try {
    response = await fetch(url, {
      method: type,
      headers: {
        "content-type": contentType ?? "application/x-www-form-urlencoded",
        "x-csrf-token": "harness",
        "x-requested-with": "XMLHttpRequest",
      },
      body,
    });
  } catch (e) {
    throw { jqXHR: { status: 0 }, textStatus: "error", errorThrown: e.message };
  }
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (!response.ok) {
    throw {
      jqXHR: { status: response.status, responseJSON: json },
      textStatus: "error",
      errorThrown: response.statusText,
    };
  }
  return json;
}
