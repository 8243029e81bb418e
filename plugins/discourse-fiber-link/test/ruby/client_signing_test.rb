# frozen_string_literal: true

require_relative "test_helper"
require "socket"

# The client's signatures and transport behaviour, without the service.
class ClientSigningTest < Minitest::Test
  SECRET = "fls_0000000000000000000000000000000000000000000000000000000000000001"
  BODY = '{"jsonrpc":"2.0","id":1,"method":"health.ping","params":{}}'
  EXPECTED = "320a90ca128384fa2001a497b3df01a697214128653aecdcb7f220fa5d3570a8"

  def client(**opts)
    FiberLink::Client.new(
      base_url: "http://127.0.0.1:9",
      app_id: "app_000000000000000000000001",
      secret: SECRET,
      **opts,
    )
  end

  def test_signature_matches_the_worked_example_in_docs_api_md
    assert_equal EXPECTED, FiberLink::Client.signature(SECRET, 1_767_225_600, "n0nce-0001", BODY)
  end

  def test_build_request_signs_the_exact_body_bytes_it_sends
    c = client(clock: -> { 1_767_225_600 }, nonce: -> { "n0nce-0001" })
    req = c.build_request("health.ping", {})
    assert_equal BODY, req.body
    assert_equal(
      {
        "x-app-id" => "app_000000000000000000000001",
        "x-ts" => "1767225600",
        "x-nonce" => "n0nce-0001",
        "x-signature" => EXPECTED,
      },
      req.headers,
    )
  end

  def test_non_ascii_bodies_are_signed_as_utf8_bytes
    body = JSON.generate({ "message" => "merci é ☕" })
    sig = FiberLink::Client.signature(SECRET, 1, "nonce-abc", body)
    expected = OpenSSL::HMAC.hexdigest("SHA256", SECRET, "1.nonce-abc.#{body}".b)
    assert_equal expected, sig
    refute_equal FiberLink::Client.signature(SECRET, 1, "nonce-abc", body.sub("é", "e")), sig
  end

  def test_each_request_gets_a_fresh_nonce_and_id
    c = client
    a = c.build_request("health.ping")
    b = c.build_request("health.ping")
    refute_equal a.headers["x-nonce"], b.headers["x-nonce"]
    assert_match(/\A[0-9a-f]{32}\z/, a.headers["x-nonce"])
    refute_equal JSON.parse(a.body)["id"], JSON.parse(b.body)["id"]
  end

  def test_the_secret_never_appears_in_inspect_or_to_s
    c = client
    refute_includes c.inspect, SECRET
    refute_includes c.to_s, SECRET
    assert_includes c.inspect, "[FILTERED]"
  end

  def test_bodies_over_64_kib_are_refused_before_sending
    err = assert_raises(FiberLink::Client::RpcError) { client.build_request("tip.create", { "m" => "x" * 70_000 }) }
    assert_equal "body_too_large", err.reason
  end

  def test_a_server_that_never_answers_hits_the_read_timeout
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    held = []
    acceptor = Thread.new { loop { held << server.accept } }
    c = FiberLink::Client.new(base_url: "http://127.0.0.1:#{port}", app_id: "app_x", secret: SECRET, read_timeout: 0.5)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    err = assert_raises(FiberLink::Client::TransportError) { c.call("health.ping") }
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    assert_equal "service_timeout", err.reason
    assert_operator elapsed, :<, 5
  ensure
    acceptor&.kill
    held&.each(&:close)
    server&.close
  end

  def test_a_closed_port_is_service_unavailable
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
    c = FiberLink::Client.new(base_url: "http://127.0.0.1:#{port}", app_id: "app_x", secret: SECRET)
    err = assert_raises(FiberLink::Client::TransportError) { c.call("health.ping") }
    assert_equal "service_unavailable", err.reason
  end

  def test_an_answer_that_is_not_json_rpc_is_a_transport_error
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    t =
      Thread.new do
        s = server.accept
        s.readpartial(65_536)
        s.write("HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 5\r\n" \
                "connection: close\r\n\r\noops!")
        s.close
      end
    c = FiberLink::Client.new(base_url: "http://127.0.0.1:#{port}", app_id: "app_x", secret: SECRET)
    err = assert_raises(FiberLink::Client::TransportError) { c.call("health.ping") }
    assert_match(/HTTP 502/, err.message)
  ensure
    t&.join(2)
    server&.close
  end

  def test_constructor_refuses_missing_settings
    assert_raises(ArgumentError) { FiberLink::Client.new(base_url: "", app_id: "a", secret: "s") }
    assert_raises(ArgumentError) { FiberLink::Client.new(base_url: "http://x", app_id: "", secret: "s") }
    assert_raises(ArgumentError) { FiberLink::Client.new(base_url: "http://x", app_id: "a", secret: "") }
    assert_raises(ArgumentError) { FiberLink::Client.new(base_url: "ftp://x", app_id: "a", secret: "s") }
  end
end
