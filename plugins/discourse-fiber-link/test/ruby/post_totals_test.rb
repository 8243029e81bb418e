# frozen_string_literal: true

require_relative "test_helper"

# The totals shown on posts: one post.totals call for a whole topic page, nothing on a second
# load, fresh figures after a settlement invalidates a post, and the real service's sums.
class PostTotalsTest < Minitest::Test
  include ServiceHelpers

  def tip(client, post, amount, asset: "CKB")
    client.call("tip.create", { "post_id" => post, "from_user_id" => uid("payer"),
                                "to_user_id" => uid("author"), "asset" => asset, "amount" => amount })
  end

  def paid(client, post, amount, asset: "CKB")
    t = tip(client, post, amount, asset:)
    sim_pay(t["invoice"])
    t
  end

  def test_a_topic_page_costs_one_call_and_a_second_load_none
    client = real_client
    posts = Array.new(20) { |i| "#{uid("post")}-#{i}" }
    settled = [paid(client, posts[0], "1"), paid(client, posts[0], "2.5"), paid(client, posts[3], "3", asset: "DEMO")]
    tip(client, posts[5], "7") # unpaid: counts for nothing
    settled.each { |t| wait_for_state(client, t["tip_id"], "SETTLED") }

    rec = RecordingClient.new(client)
    totals = FiberLink::PostTotals.new(client: rec, cache: FiberLink::PostTotals::MemoryCache.new)
    got = totals.for_posts(posts)
    assert_equal 1, rec.calls.size, "one service call for 20 posts"
    assert_equal "post.totals", rec.calls[0][0]
    assert_equal posts.size, got.size
    assert_equal [{ "asset" => "CKB", "decimals" => 8, "amount" => "3.5", "tips" => 2 }], got[posts[0]]
    assert_equal [{ "asset" => "DEMO", "decimals" => 6, "amount" => "3", "tips" => 1 }], got[posts[3]]
    assert_equal [], got[posts[5]], "an unpaid tip is not counted"
    assert_equal [], got[posts[19]]

    assert_equal got, totals.for_posts(posts)
    assert_equal 1, rec.calls.size, "a second load is served from the cache"

    # a new settlement on post 0: the settled-tips job invalidates it, the next load asks for it alone
    wait_for_state(client, paid(client, posts[0], "0.5")["tip_id"], "SETTLED")
    totals.invalidate([posts[0]])
    again = totals.for_posts(posts)
    assert_equal 2, rec.calls.size
    assert_equal [posts[0]], rec.calls[1][1]["post_ids"]
    assert_equal "4", again[posts[0]][0]["amount"]
    assert_equal 3, again[posts[0]][0]["tips"]
  end

  def test_totals_match_the_settled_tips_after_a_burst_of_payments
    client = real_client
    posts = Array.new(3) { uid("burst") }
    amounts = Array.new(12) { |i| "#{(i + 1) / 10}.#{(i + 1) % 10}" } # 0.1 … 1.2
    tips = amounts.each_with_index.map { |a, i| tip(client, posts[i % 3], a) }
    threads = tips.map { |t| Thread.new { sim_pay(t["invoice"]) } }
    threads.each(&:join)
    tips.each { |t| wait_for_state(client, t["tip_id"], "SETTLED") }

    got = FiberLink::PostTotals.new(client:, cache: FiberLink::PostTotals::MemoryCache.new).for_posts(posts)
    posts.each_with_index do |post, k|
      mine = amounts.each_with_index.select { |_, i| i % 3 == k }.map(&:first)
      shannons = mine.sum { |a| (a.to_r * 100_000_000).to_i }
      assert_equal 1, got[post].size
      assert_equal mine.size, got[post][0]["tips"]
      assert_equal shannons, (got[post][0]["amount"].to_r * 100_000_000).to_i, "post #{k}"
    end
  end

  def test_a_service_that_cannot_answer_leaves_the_page_without_totals
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
    down = FiberLink::Client.new(base_url: "http://127.0.0.1:#{port}", app_id: "app_x", secret: "s")
    logs = []
    logger = Object.new
    logger.define_singleton_method(:warn) { |m| logs << m }
    cache = FiberLink::PostTotals::MemoryCache.new
    rec = RecordingClient.new(down)
    totals = FiberLink::PostTotals.new(client: rec, cache:, logger:)
    assert_equal({}, totals.for_posts(%w[1 2]))
    assert_match(/post totals: service_unavailable/, logs.join)
    assert_equal({}, cache.read_multi("fiber_link_post_totals:1"), "nothing cached from a failure")
    assert_equal({}, totals.for_posts(%w[1 2]))
    assert_equal 1, rec.calls.size, "after a failure the next pages do not wait on the service"
  end
end
