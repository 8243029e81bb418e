# frozen_string_literal: true

require_relative "test_helper"

# The Ruby client against the real running Rust service (API + hub simulator + Postgres).
class ClientServiceTest < Minitest::Test
  include ServiceHelpers

  def tip_params(**over)
    { "post_id" => uid("post"), "from_user_id" => uid("payer"), "to_user_id" => uid("author"),
      "asset" => "CKB", "amount" => "1.5" }.merge(over.transform_keys(&:to_s))
  end

  def test_health_ping_is_answered_for_our_app
    result = real_client.call("health.ping")
    assert_equal true, result["ok"]
    assert_equal service_env["FIBER_LINK_APP_ID"], result["app_id"]
  end

  def test_a_signed_tip_create_succeeds_and_tip_get_reads_it_back
    client = real_client
    params = tip_params(message: "thanks ☕")
    tip = client.call("tip.create", params)
    assert_equal "UNPAID", tip["state"]
    assert_equal "1.5", tip["amount"]
    assert_equal "CKB", tip["asset"]
    assert_match(/\Afib[a-z]*1/, tip["invoice"])
    assert_match(/\A[0-9a-f-]{36}\z/, tip["tip_id"])

    got = client.call("tip.get", { "tip_id" => tip["tip_id"] })
    assert_equal params["from_user_id"], got["from_user_id"]
    assert_equal params["to_user_id"], got["to_user_id"]
    assert_equal "thanks ☕", got["message"]
  end

  def test_a_tampered_body_is_rejected
    client = real_client
    request = client.build_request("tip.create", tip_params(amount: "1"))
    tampered = FiberLink::Client::Request.new(body: request.body.sub('"amount":"1"', '"amount":"9"'),
                                              headers: request.headers)
    refute_equal request.body, tampered.body
    response = client.send_request(tampered)
    assert_equal 401, response.status
    err = assert_raises(FiberLink::Client::RpcError) { client.parse_response(response) }
    assert_equal(-32_001, err.code)
    assert_equal "bad_signature", err.reason
  end

  def test_a_replayed_nonce_is_rejected
    client = real_client
    request = client.build_request("tip.create", tip_params)
    first = client.parse_response(client.send_request(request))
    assert_equal "UNPAID", first["state"]
    replay = client.send_request(request)
    assert_equal 401, replay.status
    err = assert_raises(FiberLink::Client::RpcError) { client.parse_response(replay) }
    assert_equal "replayed_nonce", err.reason
  end

  def test_a_wrong_secret_is_rejected
    client = real_client(secret: "fls_#{"0" * 64}")
    err = assert_raises(FiberLink::Client::RpcError) { client.call("health.ping") }
    assert_equal(-32_001, err.code)
    assert_equal "bad_signature", err.reason
  end

  def test_a_stale_timestamp_is_rejected
    client = real_client(clock: -> { Time.now.to_i - 3600 })
    err = assert_raises(FiberLink::Client::RpcError) { client.call("health.ping") }
    assert_equal "stale_timestamp", err.reason
  end

  def test_service_validation_errors_come_back_with_their_reason
    client = real_client
    err = assert_raises(FiberLink::Client::RpcError) { client.call("tip.create", tip_params(amount: "1.123456789")) }
    assert_equal(-32_602, err.code)
    assert_equal "amount_too_many_decimals", err.reason
    refute_empty err.message

    same = uid("same")
    err = assert_raises(FiberLink::Client::RpcError) do
      client.call("tip.create", tip_params(from_user_id: same, to_user_id: same))
    end
    assert_equal "self_tip", err.reason
  end

  def test_an_unknown_method_is_method_not_found
    err = assert_raises(FiberLink::Client::RpcError) { real_client.call("tip.steal", {}) }
    assert_equal(-32_601, err.code)
    assert_equal "method_not_found", err.reason
  end

  def test_balance_get_lists_the_accepted_assets_with_their_decimals
    result = real_client.call("balance.get", { "user_id" => uid("nobody") })
    ckb = result["balances"].find { |b| b["asset"] == "CKB" }
    refute_nil ckb
    assert_equal 8, ckb["decimals"]
    assert_equal "0", ckb["available"]
  end
end
