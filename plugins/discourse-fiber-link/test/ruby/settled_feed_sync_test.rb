# frozen_string_literal: true

require_relative "test_helper"

# The notification job's core, reading the real service's tip.settled_feed.
class SettledFeedSyncTest < Minitest::Test
  include ServiceHelpers

  # The feed is app-wide and other tests settle tips too: start from the feed's current end.
  def store_at_end_of_feed(client)
    store = FiberLink::SettledFeedSync::MemoryStore.new
    FiberLink::SettledFeedSync.new(client:, store:, notifier: ->(_tip) {}, page_size: 500, max_pages: 1000).run
    store
  end

  def settled_tip(client, author)
    tip = client.call("tip.create", { "post_id" => uid("p"), "from_user_id" => uid("payer"),
                                      "to_user_id" => author, "asset" => "CKB", "amount" => "1" })
    sim_pay(tip["invoice"])
    wait_for_state(client, tip["tip_id"], "SETTLED")
    tip["tip_id"]
  end

  def test_each_settled_tip_is_notified_once_across_runs
    client = real_client
    store = store_at_end_of_feed(client)
    author = uid("author")
    ids = [settled_tip(client, author), settled_tip(client, author)]
    unpaid = client.call("tip.create", { "post_id" => uid("p"), "from_user_id" => uid("payer"),
                                         "to_user_id" => author, "asset" => "CKB", "amount" => "1" })

    seen = []
    sync = FiberLink::SettledFeedSync.new(client:, store:, notifier: ->(tip) { seen << tip }, page_size: 1)
    deadline = Time.now + 10
    sync.run until (ids - seen.map { |t| t["tip_id"] }).empty? || Time.now > deadline
    mine = seen.select { |t| t["to_user_id"] == author }
    assert_equal ids.sort, mine.map { |t| t["tip_id"] }.sort
    refute_includes seen.map { |t| t["tip_id"] }, unpaid["tip_id"]
    assert(mine.all? { |t| t["state"] == "SETTLED" && t["amount"] == "1" })

    again = []
    FiberLink::SettledFeedSync.new(client:, store:, notifier: ->(tip) { again << tip }).run
    assert_empty again.select { |t| t["to_user_id"] == author }, "a second run notifies nothing again"
  end

  def test_a_crash_mid_page_does_not_notify_twice
    client = real_client
    store = store_at_end_of_feed(client)
    author = uid("author")
    ids = [settled_tip(client, author), settled_tip(client, author)]

    seen = []
    calls = 0
    crashing = lambda do |tip|
      calls += 1
      raise "crash after the first notification" if calls == 2

      seen << tip
    end
    assert_raises(RuntimeError) do
      FiberLink::SettledFeedSync.new(client:, store:, notifier: crashing, page_size: 10).run
    end
    FiberLink::SettledFeedSync.new(client:, store:, notifier: ->(tip) { seen << tip }, page_size: 10).run
    mine = seen.select { |t| t["to_user_id"] == author }.map { |t| t["tip_id"] }
    assert_equal ids.sort, mine.sort
    assert_equal mine.uniq, mine
  end
end
