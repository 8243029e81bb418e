// Stand-in for discourse/routes/discourse (DiscourseRoute): a plain class with modelFor, which
// the harness fills in; enough to call a route's hooks.
export default class DiscourseRoute {
  models = {};

  modelFor(name) {
    return this.models[name];
  }
}
