// The schedule of the tip modal's status polling, with injectable timers. Pure module.
//
// tip.get reads the service's database only (no hub call per poll), and asking about an open tip
// makes the settlement watcher look at it within a second, so a poll every few seconds is the
// intended use: start at 2 s, grow by half each time up to 10 s; after a failure back off
// exponentially up to 30 s; stop at a final state or when stopped.

export const DEFAULT_SCHEDULE = Object.freeze({
  first: 2000,
  factor: 1.5,
  max: 10000,
  errorBase: 4000,
  errorMax: 30000,
});

// Delay before poll number `attempt` (0-based) after `failures` consecutive failures.
export function nextDelay(attempt, failures = 0, schedule = DEFAULT_SCHEDULE) {
  if (failures > 0) {
    return Math.min(
      schedule.errorBase * 2 ** (failures - 1),
      schedule.errorMax
    );
  }
  return Math.min(
    Math.round(schedule.first * schedule.factor ** attempt),
    schedule.max
  );
}

export class Poller {
  // task: () => Promise<result>; isDone(result) => bool; onResult(result); onError(error)
  constructor({
    task,
    isDone,
    onResult = () => {},
    onError = () => {},
    schedule = DEFAULT_SCHEDULE,
    timers = globalThis,
  }) {
    this.task = task;
    this.isDone = isDone;
    this.onResult = onResult;
    this.onError = onError;
    this.schedule = schedule;
    this.timers = timers;
    this.attempt = 0;
    this.failures = 0;
    this.timer = null;
    this.stopped = true;
    this.inFlight = false;
  }

  get running() {
    return !this.stopped;
  }

  start() {
    if (!this.stopped) {
      return;
    }
    this.stopped = false;
    this.attempt = 0;
    this.failures = 0;
    this.#schedule();
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  // Polls now (for a "check again" button), then continues on schedule.
  pollNow() {
    if (this.stopped || this.inFlight) {
      return;
    }
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    this.#tick();
  }

  #schedule() {
    const delay = nextDelay(this.attempt, this.failures, this.schedule);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.#tick();
    }, delay);
  }

  async #tick() {
    if (this.stopped) {
      return;
    }
    this.inFlight = true;
    try {
      const result = await this.task();
      if (this.stopped) {
        return;
      }
      this.failures = 0;
      this.attempt += 1;
      this.onResult(result);
      if (this.isDone(result)) {
        this.stop();
        return;
      }
    } catch (e) {
      if (this.stopped) {
        return;
      }
      this.failures += 1;
      if (this.onError(e) === false) {
        this.stop();
        return;
      }
    } finally {
      this.inFlight = false;
    }
    if (!this.stopped) {
      this.#schedule();
    }
  }
}
