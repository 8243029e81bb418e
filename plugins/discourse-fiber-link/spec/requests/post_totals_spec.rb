# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe "Fiber Link tip totals on a topic page" do
  fab!(:author, :user)
  fab!(:reader, :user)
  fab!(:topic) { Fabricate(:topic, user: author) }
  fab!(:topic_posts) { Array.new(20) { Fabricate(:post, topic:, user: author) } }

  let(:service) { "https://fiber-link.test" }

  before do
    SiteSetting.fiber_link_enabled = true
    SiteSetting.fiber_link_show_totals = true
    SiteSetting.fiber_link_service_url = service
    SiteSetting.fiber_link_app_id = "app_#{"0" * 24}"
    SiteSetting.fiber_link_app_secret = "fls_#{"1" * 64}"
    Rails.cache.delete_matched("fiber_link_post_totals:*")
  end

  def totals_answer(ids)
    totals =
      ids.map do |id|
        assets = id == topic_posts[0].id.to_s ? [{ asset: "CKB", decimals: 8, amount: "12.5", tips: 3 }] : []
        { post_id: id, assets: }
      end
    { status: 200, body: JSON.generate(jsonrpc: "2.0", id: 1, result: { totals: }) }
  end

  def stub_totals
    stub_request(:post, "#{service}/rpc")
      .with { |req| JSON.parse(req.body)["method"] == "post.totals" }
      .to_return { |req| totals_answer(JSON.parse(req.body)["params"]["post_ids"]) }
  end

  it "loads every post's totals in one service call and serializes them" do
    stub = stub_totals
    sign_in(reader)
    get "/t/#{topic.id}.json"
    expect(response.status).to eq(200)
    expect(stub).to have_been_requested.once
    posts = response.parsed_body["post_stream"]["posts"]
    expect(posts.size).to eq(20)
    first = posts.find { |p| p["id"] == topic_posts[0].id }
    expect(first["fiber_link_totals"]).to eq([{ "asset" => "CKB", "decimals" => 8, "amount" => "12.5", "tips" => 3 }])
    expect(posts.reject { |p| p["id"] == topic_posts[0].id }.map { |p| p["fiber_link_totals"] }.uniq).to eq([[]])
  end

  it "shows totals to anonymous visitors too" do
    stub_totals
    get "/t/#{topic.id}.json"
    first = response.parsed_body["post_stream"]["posts"].find { |p| p["id"] == topic_posts[0].id }
    expect(first["fiber_link_totals"].first["amount"]).to eq("12.5")
  end

  it "renders the topic without totals when the service is down" do
    stub_request(:post, "#{service}/rpc").to_timeout
    get "/t/#{topic.id}.json"
    expect(response.status).to eq(200)
    expect(response.parsed_body["post_stream"]["posts"].map { |p| p["fiber_link_totals"] }.uniq).to eq([[]])
  end

  it "carries no totals when the setting is off" do
    SiteSetting.fiber_link_show_totals = false
    get "/t/#{topic.id}.json"
    expect(response.parsed_body["post_stream"]["posts"].first).not_to have_key("fiber_link_totals")
    expect(WebMock).not_to have_requested(:post, "#{service}/rpc")
  end
end
