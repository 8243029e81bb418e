import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_SCHEDULE,
  nextDelay,
  Poller,
} from "../../assets/javascripts/discourse/lib/fiber-link/poll.js";

test("the schedule starts at 2 s, grows gently and caps at 10 s", () => {
  const delays = [0, 1, 2, 3, 4, 5, 6].map((a) => nextDelay(a));
  assert.deepEqual(delays, [2000, 3000, 4500, 6750, 10000, 10000, 10000]);
});

test("failures back off exponentially up to 30 s", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((f) => nextDelay(3, f)),
    [4000, 8000, 16000, 30000, 30000]
  );
  assert.equal(nextDelay(0, 0, { ...DEFAULT_SCHEDULE, first: 500 }), 500);
});

// Fake timers that record every delay and run callbacks on demand.
function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    delays: [],
    setTimeout(fn, ms) {
      this.delays.push(ms);
      const id = next++;
      pending.set(id, fn);
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    get pendingCount() {
      return pending.size;
    },
    async fire() {
      const [id, fn] = pending.entries().next().value ?? [];
      assert.ok(fn, "a poll is scheduled");
      pending.delete(id);
      fn();
      // let the task's promise and the poller's continuation run
      for (let i = 0; i < 5; i++) {
        await Promise.resolve();
      }
    },
  };
}

test("polls until a final state, then stops by itself", async () => {
  const timers = fakeTimers();
  const answers = ["UNPAID", "UNPAID", "PENDING", "SETTLED"];
  const seen = [];
  const p = new Poller({
    task: async () => answers.shift(),
    isDone: (s) => s === "SETTLED",
    onResult: (s) => seen.push(s),
    timers,
  });
  p.start();
  for (let i = 0; i < 4; i++) {
    await timers.fire();
  }
  assert.deepEqual(seen, ["UNPAID", "UNPAID", "PENDING", "SETTLED"]);
  assert.deepEqual(timers.delays, [2000, 3000, 4500, 6750]);
  assert.equal(p.running, false);
  assert.equal(timers.pendingCount, 0);
});

test("errors back off, and a success resets the backoff", async () => {
  const timers = fakeTimers();
  const script = [new Error("down"), new Error("down"), "UNPAID", "SETTLED"];
  const errors = [];
  const p = new Poller({
    task: async () => {
      const next = script.shift();
      if (next instanceof Error) {
        throw next;
      }
      return next;
    },
    isDone: (s) => s === "SETTLED",
    onError: (e) => errors.push(e.message),
    timers,
  });
  p.start();
  for (let i = 0; i < 4; i++) {
    await timers.fire();
  }
  assert.deepEqual(errors, ["down", "down"]);
  assert.deepEqual(timers.delays, [2000, 4000, 8000, 3000]);
  assert.equal(p.running, false);
});

test("stop() cancels the next poll and ignores an answer in flight", async () => {
  const timers = fakeTimers();
  let resolve;
  const seen = [];
  const p = new Poller({
    task: () => new Promise((r) => (resolve = r)),
    isDone: () => false,
    onResult: (s) => seen.push(s),
    timers,
  });
  p.start();
  await timers.fire();
  p.stop();
  resolve("UNPAID");
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(seen, []);
  assert.equal(timers.pendingCount, 0);
});

test("an onError that returns false stops polling", async () => {
  const timers = fakeTimers();
  const p = new Poller({
    task: async () => {
      throw new Error("tip_not_found");
    },
    isDone: () => false,
    onError: () => false,
    timers,
  });
  p.start();
  await timers.fire();
  assert.equal(p.running, false);
  assert.equal(timers.pendingCount, 0);
});

test("pollNow polls at once and keeps the schedule", async () => {
  const timers = fakeTimers();
  let calls = 0;
  const p = new Poller({
    task: async () => ++calls,
    isDone: () => false,
    timers,
  });
  p.start();
  p.pollNow();
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
  assert.equal(calls, 1);
  assert.equal(timers.pendingCount, 1, "the next poll is scheduled, once");
  p.stop();
});
