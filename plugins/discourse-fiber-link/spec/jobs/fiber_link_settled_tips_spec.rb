# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe Jobs::FiberLinkSettledTips do
  subject(:execute_job) { described_class.new.execute({}) }

  fab!(:author, :user)
  fab!(:payer, :user)
  fab!(:topic) { Fabricate(:topic, user: author) }
  fab!(:tipped_post) { Fabricate(:post, topic:, user: author) }

  let(:service) { "https://fiber-link.test" }
  let(:rpc_url) { "#{service}/rpc" }
  let(:totals_key) { "fiber_link_post_totals:#{tipped_post.id}" }

  before do
    SiteSetting.fiber_link_enabled = true
    SiteSetting.fiber_link_notifications_enabled = true
    SiteSetting.fiber_link_service_url = service
    SiteSetting.fiber_link_app_id = "app_#{"0" * 24}"
    SiteSetting.fiber_link_app_secret = "fls_#{"1" * 64}"
  end

  def settled_tip(tip_id, post: tipped_post, from: payer, to: author, amount: "2.5")
    {
      tip_id:,
      post_id: post.id.to_s,
      from_user_id: from.id.to_s,
      to_user_id: to.id.to_s,
      asset: "CKB",
      amount:,
      state: "SETTLED",
      settled_at: Time.zone.now.iso8601,
    }
  end

  # The feed answers these tips after no cursor, and nothing after "c1".
  def stub_feed(*tips)
    stub_request(:post, rpc_url)
      .with { |req| JSON.parse(req.body)["method"] == "tip.settled_feed" }
      .to_return do |req|
        after = JSON.parse(req.body)["params"]["after"]
        result = after.nil? ? { tips:, next_cursor: "c1" } : { tips: [], next_cursor: after }
        { status: 200, body: JSON.generate(jsonrpc: "2.0", id: 1, result:) }
      end
  end

  def tip_notifications(user = author)
    Notification.where(user:, notification_type: Notification.types[:custom])
  end

  it "notifies the author with who tipped, how much, and which post" do
    stub_feed(settled_tip("t-1"))
    expect { execute_job }.to change { tip_notifications.count }.by(1)

    notification = tip_notifications.last
    expect(notification.topic_id).to eq(topic.id)
    expect(notification.post_number).to eq(tipped_post.post_number)
    expect(JSON.parse(notification.data)).to eq(
      "message" => "fiber_link.notification.tip_received",
      "title" => "fiber_link.notification.title",
      "display_username" => payer.username,
      "topic_title" => topic.title,
      "original_post_id" => tipped_post.id,
      "amount" => "2.5",
      "asset" => "CKB",
      "tip_id" => "t-1",
    )
  end

  it "notifies each tip once, however often it runs, and every tip on the same post" do
    stub_feed(settled_tip("t-1"), settled_tip("t-2", amount: "1"))
    expect { execute_job }.to change { tip_notifications.count }.by(2)
    expect { execute_job }.not_to change(tip_notifications, :count)
    expect(tip_notifications.map { |n| JSON.parse(n.data)["tip_id"] }).to contain_exactly("t-1", "t-2")
  end

  it "drops the tipped post's cached totals, so the post shows the new total" do
    Rails.cache.write(totals_key, [{ "asset" => "CKB", "amount" => "1", "tips" => 1 }])
    stub_feed(settled_tip("t-1"))
    execute_job
    expect(Rails.cache.read(totals_key)).to be_nil
  end

  it "does not notify an author who mutes the payer" do
    MutedUser.create!(user_id: author.id, muted_user_id: payer.id)
    stub_feed(settled_tip("t-1"))
    expect { execute_job }.not_to change(tip_notifications, :count)
  end

  it "does not notify an author who ignores the payer" do
    IgnoredUser.create!(user_id: author.id, ignored_user_id: payer.id, expiring_at: 1.month.from_now)
    stub_feed(settled_tip("t-1"))
    expect { execute_job }.not_to change(tip_notifications, :count)
  end

  it "does not notify an author who turned tip notifications off, but still drops the totals" do
    author.custom_fields[FiberLink::Preferences::TIP_NOTIFICATIONS] = false
    author.save_custom_fields
    Rails.cache.write(totals_key, [])
    stub_feed(settled_tip("t-1"))
    expect { execute_job }.not_to change(tip_notifications, :count)
    expect(Rails.cache.read(totals_key)).to be_nil
  end

  it "does not notify about a post that is gone" do
    tipped_post.trash!
    stub_feed(settled_tip("t-1"))
    expect { execute_job }.not_to change(tip_notifications, :count)
  end

  it "notifies nobody when the forum turned notifications off" do
    SiteSetting.fiber_link_notifications_enabled = false
    stub_feed(settled_tip("t-1"))
    expect { execute_job }.not_to change(Notification, :count)
  end

  it "calls nothing when the plugin is disabled" do
    SiteSetting.fiber_link_enabled = false
    execute_job
    expect(WebMock).not_to have_requested(:post, rpc_url)
  end

  it "survives a service that does not answer" do
    stub_request(:post, rpc_url).to_timeout
    expect { execute_job }.not_to raise_error
    expect(tip_notifications.count).to eq(0)
  end
end
