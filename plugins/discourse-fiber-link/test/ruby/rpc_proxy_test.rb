# frozen_string_literal: true

require_relative "test_helper"
require "stringio"
require "logger"

# The proxy core's allow-list and identity rules, forwarding to the real service.
class RpcProxyTest < Minitest::Test
  include ServiceHelpers

  V = FiberLink::RpcProxy::Viewer
  PostRef = FiberLink::RpcProxy::PostRef

  def setup
    @alice = uid("alice")
    @bob = uid("bob")
    @carol = uid("carol")
    # A tiny forum: post 1 by alice, post 2 by bob, post 3 hidden from everyone but bob, post 4
    # by bob in a category where the forum's rule refuses tips.
    @posts = {
      "#{@alice}-p1" => PostRef.new(id: "#{@alice}-p1", author_id: @alice),
      "#{@bob}-p2" => PostRef.new(id: "#{@bob}-p2", author_id: @bob),
      "#{@bob}-p3" => PostRef.new(id: "#{@bob}-p3", author_id: @bob),
      "#{@bob}-p4" => PostRef.new(id: "#{@bob}-p4", author_id: @bob, refusal: :category_not_allowed),
    }
    @client = RecordingClient.new(real_client)
    @enabled = true
    @proxy = build_proxy
  end

  def build_proxy(client: @client, **opts)
    FiberLink::RpcProxy.new(
      client:,
      post_lookup: lambda { |id, viewer|
        post = @posts[id.to_s]
        next nil if post.nil?
        next nil if id.to_s.end_with?("-p3") && viewer.id != @bob

        post
      },
      enabled: -> { @enabled },
      tip_limits: -> { { min: "0.1", max: "500" } },
      user_lookup: ->(ids) { ids.to_h { |i| [i, "name-of-#{i}"] } },
      qr: ->(text) { "data:text/plain,#{text.length}" },
      **opts,
    )
  end

  def call(viewer, method, params)
    @proxy.call(viewer:, method:, params:)
  end

  def ok(viewer, method, params)
    status, body = call(viewer, method, params)
    assert_equal 200, status
    assert_nil body["error"], "expected a result, got #{body["error"].inspect}"
    body["result"]
  end

  def refused(viewer, method, params, reason, status: 200)
    got_status, body = call(viewer, method, params)
    assert_equal status, got_status
    refute_nil body["error"], "expected #{reason}, got a result"
    assert_equal reason, body["error"]["reason"]
    body["error"]
  end

  def test_tip_create_credits_the_post_author_whatever_the_browser_says
    tip = ok(V.new(id: @carol), "tip.create",
             { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "2",
               "from_user_id" => @bob, "to_user_id" => @carol, "message" => "nice" })
    assert_equal "UNPAID", tip["state"]
    assert_equal "data:text/plain,#{tip["invoice"].length}", tip["qr_data_url"]
    sent = @client.calls.last[1]
    assert_equal @carol, sent["from_user_id"]
    assert_equal @alice, sent["to_user_id"]
    stored = real_client.call("tip.get", { "tip_id" => tip["tip_id"] })
    assert_equal @carol, stored["from_user_id"], "the service recorded the viewer as payer"
    assert_equal @alice, stored["to_user_id"], "the service credits the author of the post"
    assert_equal "nice", stored["message"]
  end

  def test_tipping_your_own_post_is_refused_before_the_service
    refused(V.new(id: @alice), "tip.create", { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1" },
            "self_tip")
    assert_empty @client.calls
  end

  def test_an_invisible_or_missing_post_is_refused
    refused(V.new(id: @alice), "tip.create", { "post_id" => "#{@bob}-p3", "asset" => "CKB", "amount" => "1" },
            "post_not_found")
    refused(V.new(id: @alice), "tip.create", { "post_id" => "nope", "asset" => "CKB", "amount" => "1" },
            "post_not_found")
    refused(V.new(id: @alice), "tip.create", { "asset" => "CKB", "amount" => "1" }, "post_not_found")
    assert_empty @client.calls
    # bob may see post 3, but it is his own
    refused(V.new(id: @bob), "tip.create", { "post_id" => "#{@bob}-p3", "asset" => "CKB", "amount" => "1" },
            "self_tip")
  end

  def test_a_disabled_plugin_or_an_anonymous_viewer_is_refused
    @enabled = false
    refused(V.new(id: @carol), "balance.get", {}, "plugin_disabled", status: 404)
    @enabled = true
    refused(nil, "balance.get", {}, "not_logged_in", status: 403)
    refused(V.new(id: ""), "balance.get", {}, "not_logged_in", status: 403)
    assert_empty @client.calls
  end

  def test_only_allow_listed_methods_reach_the_service
    %w[tip.settled_feed health.ping withdrawal.approve app.create tip.create2].each do |m|
      refused(V.new(id: @carol), m, {}, "method_not_allowed")
    end
    refused(V.new(id: @carol), "balance.get", "not an object", "params_not_object")
    assert_empty @client.calls
  end

  def test_tip_limits_from_the_settings_are_enforced
    base = { "post_id" => "#{@alice}-p1", "asset" => "CKB" }
    refused(V.new(id: @carol), "tip.create", base.merge("amount" => "0.05"), "tip_below_minimum")
    refused(V.new(id: @carol), "tip.create", base.merge("amount" => "500.00000001"), "tip_above_maximum")
    assert_empty @client.calls
    ok(V.new(id: @carol), "tip.create", base.merge("amount" => "500"))
  end

  def test_service_errors_reach_the_browser_with_their_reason
    err = refused(V.new(id: @carol), "tip.create",
                  { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1.123456789" },
                  "amount_too_many_decimals")
    assert_equal(-32_602, err["code"])
    refused(V.new(id: @carol), "tip.create",
            { "post_id" => "#{@alice}-p1", "asset" => "NOPE", "amount" => "1" }, "unknown_asset")
    refused(V.new(id: @carol), "tip.create",
            { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1", "message" => "a\u0007" },
            "message_malformed")
    assert_equal 3, @client.calls.size, "each of these was the service's answer"
  end

  def test_a_malformed_amount_is_refused_before_the_service
    base = { "post_id" => "#{@alice}-p1", "asset" => "CKB" }
    [1, 2.5, nil, "", " 1", "1 ", "01", "-1", "+1", "1e3", ".5", "5.", "1,5", "0", "0.0", "0x10",
     "1#{"0" * 64}", ["1"], { "v" => "1" }].each do |amount|
      err = refused(V.new(id: @carol), "tip.create", base.merge("amount" => amount), "amount_invalid")
      assert_equal(-32_602, err["code"])
    end
    refused(V.new(id: @carol), "tip.create", base, "amount_invalid")
    assert_empty @client.calls, "nothing reached the service"
  end

  def test_a_message_over_the_limit_is_refused_before_the_service
    base = { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1" }
    err = refused(V.new(id: @carol), "tip.create", base.merge("message" => "x" * 281), "message_too_long")
    assert_equal(-32_602, err["code"])
    refused(V.new(id: @carol), "tip.create", base.merge("message" => "é" * 281), "message_too_long")
    refused(V.new(id: @carol), "tip.create", base.merge("message" => 42), "message_malformed")
    refused(V.new(id: @carol), "tip.create", base.merge("message" => ["hi"]), "message_malformed")
    refused(V.new(id: @carol), "tip.create", base.merge("message" => "\xff".dup.force_encoding("UTF-8")),
            "message_malformed")
    assert_empty @client.calls, "nothing reached the service"

    # 280 characters (not bytes) is the service's own limit, and it takes them
    tip = ok(V.new(id: @carol), "tip.create", base.merge("message" => "é" * 280))
    assert_equal "é" * 280, real_client.call("tip.get", { "tip_id" => tip["tip_id"] })["message"]
    ok(V.new(id: @carol), "tip.create", base.merge("message" => ""))
    refute @client.calls.last[1].key?("message"), "an empty message is no message"
  end

  def test_the_forums_tipping_rule_is_applied_before_the_service
    err = refused(V.new(id: @carol), "tip.create", { "post_id" => "#{@bob}-p4", "asset" => "CKB", "amount" => "1" },
                  "category_not_allowed")
    assert_equal(-32_009, err["code"])
    @posts["#{@bob}-p4"].refusal = :author_opted_out
    refused(V.new(id: @carol), "tip.create", { "post_id" => "#{@bob}-p4", "asset" => "CKB", "amount" => "1" },
            "author_not_tippable")
    @posts["#{@bob}-p4"].refusal = :post_deleted
    refused(V.new(id: @carol), "tip.create", { "post_id" => "#{@bob}-p4", "asset" => "CKB", "amount" => "1" },
            "post_not_found")
    @posts["#{@bob}-p4"].refusal = :viewer_not_allowed
    refused(V.new(id: @carol), "tip.create", { "post_id" => "#{@bob}-p4", "asset" => "CKB", "amount" => "1" },
            "tipping_not_allowed")
    assert_empty @client.calls
  end

  def test_balance_is_always_the_viewers_own
    result = ok(V.new(id: @carol), "balance.get", { "user_id" => @alice })
    assert_equal @carol, result["user_id"]
    assert_equal({ "user_id" => @carol }, @client.calls.last[1])
  end

  def test_a_tip_is_visible_only_to_its_payer_its_author_and_admins
    tip = ok(V.new(id: @carol), "tip.create", { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1" })
    id = tip["tip_id"]
    payer_view = ok(V.new(id: @carol), "tip.get", { "tip_id" => id })
    assert_equal tip["invoice"], payer_view["invoice"]
    author_view = ok(V.new(id: @alice), "tip.get", { "tip_id" => id })
    assert_nil author_view["invoice"], "the author does not need the payer's invoice"
    assert_equal "UNPAID", author_view["state"]
    refused(V.new(id: @bob), "tip.get", { "tip_id" => id }, "tip_not_found")
    assert_equal id, ok(V.new(id: @bob, admin: true), "tip.get", { "tip_id" => id })["tip_id"]
    refused(V.new(id: @bob), "tip.get", { "tip_id" => "../../x" }, "invalid_params")
  end

  def test_idempotency_keys_are_per_viewer
    params = { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1", "idempotency_key" => "key-#{uid("k")}" }
    a1 = ok(V.new(id: @carol), "tip.create", params)
    a2 = ok(V.new(id: @carol), "tip.create", params)
    assert_equal a1["tip_id"], a2["tip_id"], "a retry with the same key returns the same tip"
    b = ok(V.new(id: @bob), "tip.create", params)
    refute_equal a1["tip_id"], b["tip_id"], "another user's same key is another tip"
    refused(V.new(id: @carol), "tip.create", params.merge("idempotency_key" => "bad key!"), "invalid_params")
  end

  def test_the_settled_tip_is_visible_to_the_author_as_settled
    tip = ok(V.new(id: @carol), "tip.create", { "post_id" => "#{@bob}-p2", "asset" => "CKB", "amount" => "3" })
    sim_pay(tip["invoice"])
    wait_for_state(real_client, tip["tip_id"], "SETTLED")
    assert_equal "SETTLED", ok(V.new(id: @bob), "tip.get", { "tip_id" => tip["tip_id"] })["state"]
    ckb = ok(V.new(id: @bob), "balance.get", {})["balances"].find { |b| b["asset"] == "CKB" }
    assert_equal "3", ckb["available"]
  end

  def test_dashboard_summary_is_the_viewers_own_and_names_people
    ok(V.new(id: @carol), "tip.create", { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1" })
    summary = ok(V.new(id: @alice), "dashboard.summary", { "user_id" => @carol })
    assert_equal @alice, summary["user_id"]
    assert_equal 1, summary["counts"]["tips_received"]
    assert_equal @carol, summary["latest_received"].first["from_user_id"]
    assert_equal "name-of-#{@carol}", summary["users"][@carol]
  end

  def test_tip_list_is_the_viewers_own_and_clamps_its_page
    3.times { ok(V.new(id: @carol), "tip.create", { "post_id" => "#{@alice}-p1", "asset" => "CKB", "amount" => "1" }) }
    page = ok(V.new(id: @alice), "tip.list", { "user_id" => @carol, "direction" => "received", "limit" => 2 })
    assert_equal({ "user_id" => @alice, "direction" => "received", "limit" => 2 }, @client.calls.last[1])
    assert_equal 2, page["tips"].size
    refute_nil page["next_cursor"]
    rest = ok(V.new(id: @alice), "tip.list",
              { "direction" => "received", "cursor" => page["next_cursor"], "limit" => 2 })
    assert_equal 1, rest["tips"].size
    assert_nil rest["next_cursor"]
    ok(V.new(id: @alice), "tip.list", { "direction" => "received", "limit" => 10_000 })
    assert_equal 50, @client.calls.last[1]["limit"]
    refused(V.new(id: @alice), "tip.list", { "direction" => "everyone" }, "invalid_params")
  end

  def test_a_withdrawal_request_needs_a_confirmed_session
    invoice = sim("sim_external_invoice", {})["invoice"]
    params = { "asset" => "CKB", "amount" => "1", "idempotency_key" => "wd-#{uid("k")}",
               "destination" => { "kind" => "fiber_invoice", "invoice" => invoice } }
    [V.new(id: @bob), V.new(id: @bob, session_confirmed: false), V.new(id: @bob, session_confirmed: "true")].each do |v|
      err = refused(v, "withdrawal.request", params, "confirm_session_required")
      assert_equal(-32_003, err["code"])
    end
    assert_empty @client.calls, "nothing reached the service"
    # the rest of the dashboard needs no confirmation
    ok(V.new(id: @bob), "withdrawal.list", {})
    ok(V.new(id: @bob), "withdrawal.quote", params.except("idempotency_key"))
    # confirmed: the request reaches the service (which refuses it: bob has no balance)
    _, body = call(V.new(id: @bob, session_confirmed: true), "withdrawal.request", params)
    refute_equal "confirm_session_required", body.dig("error", "reason")
    assert_equal "withdrawal.request", @client.calls.last[0]
    assert_equal @bob, @client.calls.last[1]["user_id"]
  end

  def test_withdrawal_amounts_are_checked_before_the_service
    dest = { "kind" => "ckb_address", "address" => "ckt1qyq#{"q" * 40}" }
    confirmed = V.new(id: @alice, session_confirmed: true)
    ["01", "-5", "1e3", "", nil, 5].each do |amount|
      refused(confirmed, "withdrawal.request", { "asset" => "CKB", "amount" => amount, "destination" => dest },
              "amount_invalid")
    end
    refused(V.new(id: @alice), "withdrawal.quote", { "asset" => "CKB", "amount" => "1e3", "destination" => dest },
            "amount_invalid")
    assert_empty @client.calls
    ok(V.new(id: @alice), "withdrawal.quote", { "asset" => "CKB", "amount" => "", "destination" => dest })
    refute @client.calls.last[1].key?("amount"), "no amount: the quote is for the most allowed"
  end

  def test_withdrawals_are_the_viewers_own
    refused(V.new(id: @alice, session_confirmed: true), "withdrawal.request",
            { "asset" => "CKB", "amount" => "100", "destination" => { "kind" => "bank" } }, "destination_malformed")
    quote = ok(V.new(id: @alice), "withdrawal.quote",
               { "user_id" => @bob, "asset" => "CKB", "destination" => { "kind" => "ckb_address", "address" => "x" } })
    assert_equal @alice, @client.calls.last[1]["user_id"]
    assert_equal false, quote["destination_valid"]
    list = ok(V.new(id: @alice), "withdrawal.list", { "user_id" => @bob })
    assert_equal({ "user_id" => @alice, "limit" => 20 }, @client.calls.last[1])
    assert_equal [], list["withdrawals"]
  end

  def test_a_withdrawal_is_visible_and_cancellable_only_by_its_owner
    tip = ok(V.new(id: @carol), "tip.create", { "post_id" => "#{@bob}-p2", "asset" => "CKB", "amount" => "3" })
    sim_pay(tip["invoice"])
    wait_for_state(real_client, tip["tip_id"], "SETTLED")
    invoice = sim("sim_external_invoice", {})["invoice"]
    params = { "asset" => "CKB", "amount" => "1", "user_id" => @carol, "idempotency_key" => "wd-#{uid("k")}",
               "destination" => { "kind" => "fiber_invoice", "invoice" => invoice } }
    confirmed = V.new(id: @bob, session_confirmed: true)
    w = ok(confirmed, "withdrawal.request", params)
    assert_equal @bob, w["user_id"], "the withdrawal is the viewer's, whatever user_id the browser sent"
    assert_equal w["withdrawal_id"], ok(confirmed, "withdrawal.request", params)["withdrawal_id"],
                 "the same key is the same withdrawal"

    id = w["withdrawal_id"]
    refused(V.new(id: @carol), "withdrawal.get", { "withdrawal_id" => id }, "withdrawal_not_found")
    refused(V.new(id: @carol), "withdrawal.cancel", { "withdrawal_id" => id }, "withdrawal_not_found")
    refute(@client.calls.any? { |m, _| m == "withdrawal.cancel" }, "another user's cancel never reaches the service")
    assert_equal id, ok(V.new(id: @bob), "withdrawal.get", { "withdrawal_id" => id })["withdrawal_id"]
    listed = ok(V.new(id: @bob), "withdrawal.list", {})["withdrawals"].map { |x| x["withdrawal_id"] }
    assert_equal [id], listed
    assert_empty ok(V.new(id: @carol), "withdrawal.list", {})["withdrawals"]
  end

  def test_the_secret_never_reaches_the_log_or_the_browser
    secret = "fls_#{"7" * 64}"
    log = StringIO.new
    bad = FiberLink::Client.new(base_url: service_env["FIBER_LINK_API_URL"],
                                app_id: service_env["FIBER_LINK_APP_ID"], secret:)
    proxy = build_proxy(client: bad, logger: Logger.new(log))
    status, body = proxy.call(viewer: V.new(id: @carol), method: "balance.get", params: {})
    assert_equal 200, status
    assert_equal "bad_signature", body["error"]["reason"]
    assert_match(/refused the forum/, log.string, "an authentication failure is logged for the admin")
    refute_includes log.string, secret
    refute_includes JSON.generate(body), secret
    refute_includes JSON.generate(body), service_env["FIBER_LINK_APP_SECRET"]
  end

  def test_an_unreachable_service_is_one_clear_error
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
    down = FiberLink::Client.new(base_url: "http://127.0.0.1:#{port}", app_id: "app_x", secret: "s")
    status, body = build_proxy(client: down).call(viewer: V.new(id: @carol), method: "balance.get", params: {})
    assert_equal 200, status
    assert_equal "service_unavailable", body["error"]["reason"]
  end
end
