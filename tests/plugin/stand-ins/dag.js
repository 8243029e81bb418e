// Stand-in for discourse/lib/dag, the structure the "post-menu-buttons" value transformer edits:
// add / delete / replace / reposition / has / entries / resolve, with before/after constraints
// (a key or a list of keys) and a default position. resolve() is a topological sort that keeps
// insertion order among unconstrained items (core's is locality-preserving; for the few
// constraints here the order is the same). Constraints on keys that are not in the DAG are
// ignored, as core's placeholder vertices are.
export default class DAG {
  static from(entries, opts) {
    const dag = new DAG(opts);
    for (const [key, value, position] of entries) {
      dag.add(key, value, position);
    }
    return dag;
  }

  #items = new Map();
  #defaultPosition;

  constructor(opts) {
    this.#defaultPosition = opts?.defaultPosition ?? {};
  }

  add(key, value, position) {
    if (this.#items.has(key)) {
      return false;
    }
    const { before, after } = position ?? this.#defaultPosition;
    this.#items.set(key, { value, before, after });
    return true;
  }

  delete(key) {
    return this.#items.delete(key);
  }

  replace(key, value, position) {
    const item = this.#items.get(key);
    if (!item) {
      return false;
    }
    item.value = value;
    if (position) {
      item.before = position.before;
      item.after = position.after;
    }
    return true;
  }

  reposition(key, position) {
    const item = this.#items.get(key);
    return item ? this.replace(key, item.value, position) : false;
  }

  has(key) {
    return this.#items.has(key);
  }

  entries() {
    return [...this.#items].map(([key, { value, before, after }]) => [key, value, { before, after }]);
  }

  resolve() {
    const keys = [...this.#items.keys()];
    const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
    const edges = new Map(keys.map((k) => [k, new Set()])); // k -> keys that must come after k
    for (const [key, { before, after }] of this.#items) {
      for (const b of list(before)) {
        if (edges.has(b) && b !== key) {
          edges.get(key).add(b);
        }
      }
      for (const a of list(after)) {
        if (edges.has(a) && a !== key) {
          edges.get(a).add(key);
        }
      }
    }
    const indegree = new Map(keys.map((k) => [k, 0]));
    for (const targets of edges.values()) {
      for (const t of targets) {
        indegree.set(t, indegree.get(t) + 1);
      }
    }
    const order = [];
    const placed = new Set();
    while (order.length < keys.length) {
      const next = keys.find((k) => !placed.has(k) && indegree.get(k) === 0);
      if (next === undefined) {
        throw new Error("cycle detected in the post menu DAG");
      }
      placed.add(next);
      order.push(next);
      for (const t of edges.get(next)) {
        indegree.set(t, indegree.get(t) - 1);
      }
    }
    return order.map((key) => {
      const { value, before, after } = this.#items.get(key);
      return { key, value, position: { before, after } };
    });
  }
}
