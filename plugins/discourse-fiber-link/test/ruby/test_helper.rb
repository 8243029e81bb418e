# frozen_string_literal: true

# Plain minitest (Debian's ruby + ruby-minitest), no Discourse. The tests that talk to the service
# need a running Fiber Link (API + hub simulator); scripts/plugin-test.sh starts `fiber-link dev`
# and exports FIBER_LINK_API_URL, FIBER_LINK_APP_ID, FIBER_LINK_APP_SECRET and FIBER_LINK_HUB_URL.

$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)

require "minitest/autorun"
require "json"
require "net/http"
require "securerandom"
require "socket"
require "fiber_link/client"
require "fiber_link/preferences"
require "fiber_link/tip_policy"
require "fiber_link/tip_notification"
require "fiber_link/rpc_proxy"
require "fiber_link/settled_feed_sync"
require "fiber_link/post_totals"

module ServiceHelpers
  def service_env
    keys = %w[FIBER_LINK_API_URL FIBER_LINK_APP_ID FIBER_LINK_APP_SECRET FIBER_LINK_HUB_URL]
    missing = keys.reject { |k| ENV[k].to_s != "" }
    unless missing.empty?
      flunk "no running Fiber Link service: #{missing.join(", ")} unset (run bash scripts/plugin-test.sh)"
    end
    keys.to_h { |k| [k, ENV[k]] }
  end

  def real_client(**overrides)
    env = service_env
    FiberLink::Client.new(
      base_url: env["FIBER_LINK_API_URL"],
      app_id: env["FIBER_LINK_APP_ID"],
      secret: env["FIBER_LINK_APP_SECRET"],
      **overrides,
    )
  end

  # A unique id per test run, so repeated runs against one service never collide.
  def uid(prefix)
    "#{prefix}-#{SecureRandom.hex(4)}"
  end

  # The hub simulator's control methods (JSON-RPC on the hub port).
  def sim(method, params)
    uri = URI.parse(service_env["FIBER_LINK_HUB_URL"])
    body = JSON.generate({ jsonrpc: "2.0", id: 1, method:, params: [params] })
    res = Net::HTTP.post(uri, body, "content-type" => "application/json")
    json = JSON.parse(res.body)
    raise "#{method} failed: #{res.body}" if json["error"]

    json["result"]
  end

  # Pays an invoice as a payer would.
  def sim_pay(invoice)
    sim("sim_pay_invoice", { invoice: })
  end

  def wait_for_state(client, tip_id, state, timeout: 20)
    deadline = Time.now + timeout
    loop do
      tip = client.call("tip.get", { "tip_id" => tip_id })
      return tip if tip["state"] == state

      flunk "tip #{tip_id} is #{tip["state"]}, not #{state}, after #{timeout}s" if Time.now > deadline
      sleep 0.3
    end
  end
end

# Records what reaches the service, then forwards it for real.
class RecordingClient
  attr_reader :calls

  def initialize(client)
    @client = client
    @calls = []
  end

  def call(method, params = {})
    @calls << [method, params]
    @client.call(method, params)
  end
end
