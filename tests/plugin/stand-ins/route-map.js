// Stand-in for Discourse's route-map loading (mapping-router.js mapRoutes): every module whose
// name ends in "route-map" is a function (routes at the root) or { resource, map } (routes added
// under an existing route, e.g. "user"); they are collected into a tree of route nodes that has
// the same API as Ember's Router.map DSL. Here the tree is flattened into { name, path } pairs
// instead of being handed to Ember's router. CORE_ROUTES holds the part of core's own map the
// plugin attaches to (app-route-map.js: the user route at /u/:username).
class RouteNode {
  constructor(name, opts = {}) {
    this.name = name;
    this.opts = { ...opts };
    if (!this.opts.path) {
      this.opts.path = name;
    }
    this.children = [];
    this.childrenByName = {};
  }

  route(name, opts, fn) {
    if (typeof opts === "function") {
      fn = opts;
      opts = {};
    }
    const existing = this.childrenByName[name];
    if (existing) {
      existing.extract(fn);
      return;
    }
    const node = new RouteNode(name, opts ?? {});
    node.extract(fn);
    this.childrenByName[name] = node;
    this.children.push(node);
  }

  extract(fn) {
    fn?.call(this);
  }

  findPath(path) {
    let node = this;
    for (const segment of path.split(".")) {
      node = node?.childrenByName[segment];
    }
    return node;
  }
}

function CORE_ROUTES() {
  this.route("user", { path: "/u/:username", resetNamespace: true }, function () {
    this.route("summary");
    this.route("badges");
  });
}

const join = (a, b) => `${a.replace(/\/$/, "")}/${b.replace(/^\//, "")}`;

// routeMaps: { moduleName: module's default export }. Returns [{ name, path }].
export function mapRoutes(routeMaps) {
  const tree = new RouteNode("root");
  tree.extract(CORE_ROUTES);
  const extras = [];
  for (const [moduleName, mapObj] of Object.entries(routeMaps)) {
    if (!/route-map$/.test(moduleName)) {
      continue;
    }
    if (!mapObj) {
      throw new Error(`${moduleName} must export a route map.`);
    }
    if (typeof mapObj === "function") {
      tree.extract(mapObj);
    } else {
      extras.push(mapObj);
    }
  }
  for (const extra of extras) {
    tree.findPath(extra.resource)?.extract(extra.map);
  }
  const routes = [];
  const walk = (node, parentName, parentPath) => {
    for (const child of node.children) {
      const name = child.opts.resetNamespace || !parentName ? child.name : `${parentName}.${child.name}`;
      const path = join(parentPath, child.opts.path);
      routes.push({ name, path });
      walk(child, name, path);
    }
  };
  walk(tree, "", "/");
  return routes;
}
