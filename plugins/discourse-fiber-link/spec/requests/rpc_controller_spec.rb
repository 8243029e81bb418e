# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe FiberLink::RpcController do
  fab!(:author) { Fabricate(:user, refresh_auto_groups: true) }
  fab!(:reader) { Fabricate(:user, refresh_auto_groups: true) }
  fab!(:category)
  fab!(:topic) { Fabricate(:topic, user: author, category:) }
  # not `fab!(:post)`: that would hide the request helper `post` this spec sends requests with
  fab!(:tipped_post) { Fabricate(:post, topic:, user: author) }

  let(:service) { "https://fiber-link.test" }
  let(:rpc_url) { "#{service}/rpc" }
  let(:withdrawal_params) do
    {
      asset: "CKB",
      amount: "1",
      idempotency_key: "wd-key-0001",
      destination: {
        kind: "fiber_invoice",
        invoice: "fibd1invoice",
      },
    }
  end

  before do
    SiteSetting.fiber_link_enabled = true
    SiteSetting.fiber_link_service_url = service
    SiteSetting.fiber_link_app_id = "app_#{"0" * 24}"
    SiteSetting.fiber_link_app_secret = "fls_#{"1" * 64}"
  end

  def rpc(method, params = {}, headers: {})
    post "/fiber-link/rpc.json",
         params: { method:, params: }.to_json,
         headers: { "CONTENT_TYPE" => "application/json" }.merge(headers)
  end

  def error_reason
    response.parsed_body.dig("error", "reason")
  end

  # Answers one service method with a result; the request is checked by the block, if given.
  def stub_service(method, result, &check)
    stub_request(:post, rpc_url)
      .with { |req| JSON.parse(req.body)["method"] == method && (check.nil? || check.call(req)) }
      .to_return(status: 200, body: JSON.generate(jsonrpc: "2.0", id: 1, result:))
  end

  def tip(post_id = tipped_post.id, **params)
    rpc("tip.create", { post_id:, asset: "CKB", amount: "1" }.merge(params))
  end

  def confirm_session
    post "/u/confirm-session.json", params: { password: "myawesomepassword" }
    expect(response.status).to eq(200)
    expect(response.parsed_body["success"]).to be_present
  end

  describe "who may use it" do
    it "refuses anonymous users" do
      rpc("balance.get")
      expect(response.status).to eq(403)
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    it "is a 404 when the plugin is disabled" do
      SiteSetting.fiber_link_enabled = false
      sign_in(reader)
      rpc("balance.get")
      expect(response.status).to eq(404)
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    it "never forwards methods outside the allow-list" do
      sign_in(reader)
      rpc("tip.settled_feed")
      expect(error_reason).to eq("method_not_allowed")
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    it "does not serialize the app secret to the client" do
      get "/site.json"
      expect(response.body).not_to include(SiteSetting.fiber_link_app_secret)
    end
  end

  describe "CSRF" do
    before { ActionController::Base.allow_forgery_protection = true }
    after { ActionController::Base.allow_forgery_protection = false }

    it "refuses a request without the forum's CSRF token and calls nothing" do
      sign_in(reader)
      rpc("balance.get")
      expect(response.status).to eq(403)
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    it "accepts the token the forum handed out" do
      sign_in(reader)
      stub_service("balance.get", { user_id: reader.id.to_s, balances: [] })
      get "/session/csrf.json"
      rpc("balance.get", {}, headers: { "X-CSRF-Token" => response.parsed_body["csrf"] })
      expect(response.status).to eq(200)
      expect(response.parsed_body["result"]["user_id"]).to eq(reader.id.to_s)
    end
  end

  describe "rate limits" do
    it "applies the forum's rate limit to every call" do
      sign_in(reader)
      RateLimiter.any_instance.expects(:performed!).raises(RateLimiter::LimitExceeded.new(60))
      rpc("balance.get")
      expect(response.status).to eq(429)
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    context "with rate limits enabled" do
      before { RateLimiter.enable }

      it "allows only a few withdrawal requests an hour, staff included" do
        admin = Fabricate(:admin)
        SiteSetting.fiber_link_withdrawal_requests_per_hour = 2
        stub_service("withdrawal.request", { withdrawal_id: "w-1", state: "QUEUED" })
        sign_in(admin)
        confirm_session

        2.times do
          rpc("withdrawal.request", withdrawal_params)
          expect(response.status).to eq(200)
          expect(response.parsed_body["result"]["withdrawal_id"]).to eq("w-1")
        end
        rpc("withdrawal.request", withdrawal_params)
        expect(response.status).to eq(429)
        expect(WebMock).to have_requested(:post, rpc_url).twice

        # the rest of the dashboard is not held back by it
        stub_service("withdrawal.list", { withdrawals: [] })
        rpc("withdrawal.list")
        expect(response.status).to eq(200)
      end
    end
  end

  describe "identities" do
    it "forwards tip.create with the identities derived on the server, signed" do
      sign_in(reader)
      stub =
        stub_service("tip.create", { tip_id: "t", invoice: "fibd1x", state: "UNPAID" }) do |req|
          params = JSON.parse(req.body)["params"]
          params["from_user_id"] == reader.id.to_s && params["to_user_id"] == author.id.to_s &&
            params["post_id"] == tipped_post.id.to_s && req.headers["X-Signature"].present? &&
            req.headers["X-App-Id"] == SiteSetting.fiber_link_app_id
        end

      tip(to_user_id: reader.id, from_user_id: author.id)
      expect(response.status).to eq(200)
      expect(stub).to have_been_requested
      expect(response.parsed_body["result"]["tip_id"]).to eq("t")
      expect(response.parsed_body["result"]["qr_data_url"]).to start_with("data:image/svg+xml")
    end

    it "reads only the viewer's own balance, whatever user_id the browser sends" do
      sign_in(reader)
      stub =
        stub_service("balance.get", { balances: [] }) do |req|
          JSON.parse(req.body)["params"] == { "user_id" => reader.id.to_s }
        end
      rpc("balance.get", { user_id: author.id })
      expect(stub).to have_been_requested
    end

    it "refuses tipping one's own post without calling the service" do
      sign_in(author)
      tip
      expect(error_reason).to eq("self_tip")
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end
  end

  describe "the tipping rule (Guardian#can_tip_post?)" do
    before { sign_in(reader) }

    def expect_refused(reason)
      expect(response.status).to eq(200)
      expect(error_reason).to eq(reason)
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    it "refuses a post the user cannot see" do
      topic.update!(category: Fabricate(:private_category, group: Fabricate(:group)))
      tip
      expect_refused("post_not_found")
    end

    it "refuses a deleted post, a deleted topic, and posts that are not regular" do
      tipped_post.trash!
      tip
      expect_refused("post_not_found")

      other = Fabricate(:post, user: author)
      other.topic.trash!
      tip(other.id)
      expect_refused("post_not_found")

      whisper = Fabricate(:post, topic:, user: author, post_type: Post.types[:whisper])
      tip(whisper.id)
      expect_refused("post_not_found")

      small_action = Fabricate(:post, topic:, user: author, post_type: Post.types[:small_action])
      tip(small_action.id)
      expect_refused("post_not_found")

      tip("not-a-post")
      expect_refused("post_not_found")
    end

    it "refuses users outside the allowed groups" do
      SiteSetting.fiber_link_allowed_groups = Group::AUTO_GROUPS[:trust_level_4].to_s
      tip
      expect_refused("tipping_not_allowed")
    end

    it "refuses posts outside the allowed categories" do
      SiteSetting.fiber_link_categories = Fabricate(:category).id.to_s
      tip
      expect_refused("category_not_allowed")
      SiteSetting.fiber_link_categories = category.id.to_s
      stub_service("tip.create", { tip_id: "t", invoice: "fibd1x", state: "UNPAID" })
      tip
      expect(response.parsed_body["result"]["tip_id"]).to eq("t")
    end

    it "refuses posts by the system user, staged, suspended and anonymous authors" do
      tip(Fabricate(:post, topic:, user: Discourse.system_user).id)
      expect_refused("post_author_missing")

      tip(Fabricate(:post, topic:, user: Fabricate(:staged)).id)
      expect_refused("author_not_tippable")

      suspended = Fabricate(:user, suspended_till: 1.year.from_now, suspended_at: Time.zone.now)
      tip(Fabricate(:post, topic:, user: suspended).id)
      expect_refused("author_not_tippable")

      tip(Fabricate(:post, topic:, user: Fabricate(:anonymous)).id)
      expect_refused("author_not_tippable")
    end

    it "refuses authors who turned tips off, and only them" do
      author.custom_fields[FiberLink::Preferences::ALLOW_TIPS] = false
      author.save_custom_fields
      tip
      expect_refused("author_not_tippable")

      author.custom_fields[FiberLink::Preferences::ALLOW_TIPS] = true
      author.save_custom_fields
      stub_service("tip.create", { tip_id: "t", invoice: "fibd1x", state: "UNPAID" })
      tip
      expect(response.parsed_body["result"]["tip_id"]).to eq("t")
    end

    it "refuses a malformed amount or an overlong message without calling the service" do
      tip(amount: "1e3")
      expect_refused("amount_invalid")
      tip(amount: 5)
      expect_refused("amount_invalid")
      tip(message: "x" * 281)
      expect_refused("message_too_long")
    end
  end

  describe "withdrawal.request" do
    fab!(:owner) { Fabricate(:user, refresh_auto_groups: true) }

    before { sign_in(owner) }

    it "requires a confirmed session and calls nothing without one" do
      rpc("withdrawal.request", withdrawal_params)
      expect(response.status).to eq(200)
      expect(response.parsed_body["error"]).to eq(
        "code" => -32_003,
        "reason" => "confirm_session_required",
        "message" => "confirm your password (or second factor) to withdraw",
      )
      expect(WebMock).not_to have_requested(:post, rpc_url)
    end

    it "refuses a wrong password, then forwards the request once the session is confirmed" do
      post "/u/confirm-session.json", params: { password: "not-the-password" }
      rpc("withdrawal.request", withdrawal_params)
      expect(error_reason).to eq("confirm_session_required")

      confirm_session
      stub =
        stub_service("withdrawal.request", { withdrawal_id: "w-1", state: "QUEUED" }) do |req|
          params = JSON.parse(req.body)["params"]
          params["user_id"] == owner.id.to_s &&
            params["idempotency_key"] == "discourse:#{owner.id}:wd-key-0001"
        end
      rpc("withdrawal.request", withdrawal_params.merge(user_id: author.id))
      expect(response.parsed_body["result"]["withdrawal_id"]).to eq("w-1")
      expect(stub).to have_been_requested.once
    end

    it "refuses withdrawals where Discourse cannot confirm who the user is (DiscourseConnect)" do
      SiteSetting.discourse_connect_url = "https://sso.example.com/discourse_sso"
      SiteSetting.enable_discourse_connect = true
      rpc("withdrawal.request", withdrawal_params)
      expect(response.parsed_body["error"]["reason"]).to eq("withdrawals_unavailable")
      expect(WebMock).not_to have_requested(:post, "#{service}/rpc")
    end

    it "allows them there on the session alone only when the admin says so" do
      SiteSetting.discourse_connect_url = "https://sso.example.com/discourse_sso"
      SiteSetting.enable_discourse_connect = true
      SiteSetting.fiber_link_allow_unconfirmed_withdrawals = true
      stub_service("withdrawal.request", { withdrawal_id: "w-1", state: "QUEUED" })
      rpc("withdrawal.request", withdrawal_params)
      expect(response.parsed_body["result"]["withdrawal_id"]).to eq("w-1")
    end

    context "when the user has a second factor" do
      fab!(:totp) { Fabricate(:user_second_factor_totp, user: owner) }

      it "asks for it, then makes the withdrawal from the kept params once it is given" do
        confirm_session
        rpc("withdrawal.request", withdrawal_params)
        error = response.parsed_body["error"]
        expect(error["reason"]).to eq("second_factor_required")
        nonce = error["second_factor_challenge_nonce"]
        expect(nonce).to be_present
        expect(WebMock).not_to have_requested(:post, rpc_url)

        post "/session/2fa.json",
             params: {
               nonce:,
               second_factor_token: ROTP::TOTP.new(totp.data).now,
               second_factor_method: UserSecondFactor.methods[:totp],
             }
        expect(response.status).to eq(200)

        stub =
          stub_service("withdrawal.request", { withdrawal_id: "w-2", state: "QUEUED" }) do |req|
            params = JSON.parse(req.body)["params"]
            params["user_id"] == owner.id.to_s && params["amount"] == "1" &&
              params["destination"] == { "kind" => "fiber_invoice", "invoice" => "fibd1invoice" }
          end
        post "/fiber-link/withdrawals/second-factor.json",
             params: {
               second_factor_nonce: nonce,
               params: {
                 amount: "999",
               },
             }
        expect(response.status).to eq(200)
        expect(response.parsed_body["result"]["withdrawal_id"]).to eq("w-2")
        expect(response.parsed_body["redirect_url"]).to end_with("/u/#{owner.username}/tips")
        expect(stub).to have_been_requested.once

        # the challenge is spent
        post "/fiber-link/withdrawals/second-factor.json", params: { second_factor_nonce: nonce }
        expect(response.status).not_to eq(200)
        expect(stub).to have_been_requested.once
      end
    end
  end
end
