// Stand-in for discourse/lib/api: apiInitializer(callback) returns an initializer whose
// initialize(owner) runs the callback with a plugin API, as Discourse's does (through
// withPluginApi). The harness supplies that API (a stand-in that records what the plugin
// registers) with setPluginApiFactory.
let factory = null;

export function setPluginApiFactory(fn) {
  factory = fn;
}

export function apiInitializer(callback) {
  return {
    name: "harness-api-initializer",
    initialize(owner) {
      if (!factory) {
        throw new Error("harness: no plugin API factory");
      }
      return callback(factory(owner));
    },
  };
}
