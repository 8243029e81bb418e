# frozen_string_literal: true

# Discourse system specs: they run only inside a Discourse checkout
# (LOAD_PLUGINS=1 bin/rspec plugins/discourse-fiber-link/spec/system), and were not run where
# this plugin was built (see spec/README.md). The Fiber Link service is stubbed with WebMock at
# its /rpc endpoint; the forum's own parts (serializer, proxy, Guardian, confirm-session) are real.
describe "Fiber Link | tipping and withdrawing", type: :system do
  fab!(:author) { Fabricate(:user, refresh_auto_groups: true) }
  fab!(:reader) { Fabricate(:user, refresh_auto_groups: true) }
  fab!(:topic) { Fabricate(:topic, user: author) }
  fab!(:tipped_post) { Fabricate(:post, topic:, user: author) }
  fab!(:readers_post) { Fabricate(:post, topic:, user: reader) }

  let(:topic_page) { PageObjects::Pages::Topic.new }
  let(:post_menu) { PageObjects::Components::FiberLinkPostMenu.new(tipped_post) }
  let(:own_post_menu) { PageObjects::Components::FiberLinkPostMenu.new(readers_post) }
  let(:tip_modal) { PageObjects::Modals::FiberLinkTip.new }
  let(:tips_page) { PageObjects::Pages::FiberLinkTips.new }

  let(:rpc_url) { "https://fiber-link.test/rpc" }
  let(:invoice) { "fibd500000000001pqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq" }
  let(:payout_invoice) { "fibd100000000001pzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz" }
  let(:service_calls) { [] }

  before do
    SiteSetting.fiber_link_service_url = "https://fiber-link.test"
    SiteSetting.fiber_link_app_id = "app_#{"0" * 24}"
    SiteSetting.fiber_link_app_secret = "fls_#{"1" * 64}"
    SiteSetting.fiber_link_enabled = true

    stub_request(:post, rpc_url).to_return do |request|
      payload = JSON.parse(request.body)
      service_calls << payload
      { status: 200, body: JSON.generate(jsonrpc: "2.0", id: payload["id"], result: answer(payload)) }
    end
  end

  # What the service answers, per method.
  def answer(payload)
    params = payload["params"] || {}
    case payload["method"]
    when "post.totals"
      totals =
        params["post_ids"].map do |id|
          assets = id.to_s == tipped_post.id.to_s ? [{ asset: "CKB", decimals: 8, amount: "12.5", tips: 3 }] : []
          { post_id: id.to_s, assets: }
        end
      { totals: }
    when "balance.get", "dashboard.summary"
      {
        balances: [
          { asset: "CKB", decimals: 8, available: "2.5", incoming: "0", awaiting_payment: "0", reserved: "0" },
          { asset: "DEMO", decimals: 6, available: "0", incoming: "0", awaiting_payment: "0", reserved: "0" },
        ],
        counts: { tips_received: 0, tips_sent: 0 },
      }
    when "tip.create"
      {
        tip_id: "tip_1",
        invoice:,
        amount: params["amount"],
        asset: params["asset"],
        state: "UNPAID",
        expires_at: 1.hour.from_now.iso8601,
      }
    when "tip.get"
      { tip_id: "tip_1", state: "UNPAID", amount: "5", asset: "CKB" }
    when "tip.list"
      { tips: [], next_cursor: nil }
    when "withdrawal.list"
      { withdrawals: calls("withdrawal.request").any? ? [withdrawal] : [], next_cursor: nil }
    when "withdrawal.quote"
      { allowed: true, asset: "CKB", amount: params["amount"], fee: "0.001", receive_amount: "0.999", available: "2.5" }
    when "withdrawal.request"
      withdrawal
    end
  end

  def withdrawal
    {
      withdrawal_id: "wd_1",
      user_id: author.id.to_s,
      asset: "CKB",
      amount: "1",
      state: "QUEUED",
      created_at: Time.zone.now.iso8601,
    }
  end

  def calls(method)
    service_calls.select { |c| c["method"] == method }
  end

  it "shows the Tip button with the post's totals, and makes an invoice for the author" do
    sign_in(reader)
    topic_page.visit_topic(topic)

    expect(post_menu).to have_tip_button
    expect(post_menu.tip_button["aria-label"]).to eq("Tip @#{author.username} for this post")
    expect(post_menu).to have_totals("12.5 CKB · 3 tips")
    expect(own_post_menu).to have_no_tip_button

    post_menu.click_tip
    expect(tip_modal).to be_open
    expect(tip_modal).to have_title("Tip @#{author.username}")
    expect(tip_modal).to have_assets("CKB", "DEMO")

    tip_modal.fill_amount("0.05")
    expect(tip_modal).to have_amount_error("The smallest tip on this forum is 0.1.")
    expect(calls("tip.create")).to be_empty

    tip_modal.fill_amount("5").fill_message("Thanks!").generate_invoice
    expect(tip_modal).to have_invoice(invoice)
    expect(tip_modal).to have_qr_code
    expect(tip_modal).to have_state("Waiting for payment")

    create = calls("tip.create").sole["params"]
    expect(create).to include(
      "post_id" => tipped_post.id.to_s,
      "from_user_id" => reader.id.to_s,
      "to_user_id" => author.id.to_s,
      "amount" => "5",
      "asset" => "CKB",
      "message" => "Thanks!",
    )
  end

  it "asks a visitor who clicks Tip to log in" do
    SiteSetting.full_page_login = false
    topic_page.visit_topic(topic)

    post_menu.click_tip
    expect(page).to have_css(".login-modal")
    expect(tip_modal).to be_closed
  end

  it "asks the author to confirm who they are before a withdrawal leaves" do
    sign_in(author)
    tips_page.visit(author)
    expect(tips_page).to have_available("CKB", "2.5")

    tips_page.withdraw_to_invoice(payout_invoice, "1").confirm_withdrawal
    expect(tips_page).to have_confirm_session_dialog
    expect(calls("withdrawal.request")).to be_empty

    tips_page.confirm_session("myawesomepassword")
    expect(tips_page).to have_withdrawal("QUEUED")
    expect(calls("withdrawal.request").sole["params"]).to include("user_id" => author.id.to_s, "amount" => "1")
  end
end
