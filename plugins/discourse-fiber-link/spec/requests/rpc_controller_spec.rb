# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe FiberLink::RpcController do
  fab!(:author, :user)
  fab!(:reader, :user)
  fab!(:topic) { Fabricate(:topic, user: author) }
  # not `fab!(:post)`: that would hide the request helper `post` this spec sends requests with
  fab!(:tipped_post) { Fabricate(:post, topic:, user: author) }

  let(:service) { "https://fiber-link.test" }

  before do
    SiteSetting.fiber_link_enabled = true
    SiteSetting.fiber_link_service_url = service
    SiteSetting.fiber_link_app_id = "app_#{"0" * 24}"
    SiteSetting.fiber_link_app_secret = "fls_#{"1" * 64}"
  end

  def rpc(method, params = {})
    post "/fiber-link/rpc.json", params: { method:, params: }.to_json, headers: { "CONTENT_TYPE" => "application/json" }
  end

  it "refuses anonymous users" do
    rpc("balance.get")
    expect(response.status).to eq(403)
  end

  it "is a 404 when the plugin is disabled" do
    SiteSetting.fiber_link_enabled = false
    sign_in(reader)
    rpc("balance.get")
    expect(response.status).to eq(404)
  end

  it "forwards tip.create with the identities derived on the server, signed" do
    sign_in(reader)
    stub =
      stub_request(:post, "#{service}/rpc").with do |req|
        body = JSON.parse(req.body)
        body["method"] == "tip.create" && body["params"]["from_user_id"] == reader.id.to_s &&
          body["params"]["to_user_id"] == author.id.to_s && req.headers["X-Signature"].present?
      end.to_return(status: 200, body: JSON.generate(result: { tip_id: "t", invoice: "fibd1x", state: "UNPAID" }))

    rpc(
      "tip.create",
      { post_id: tipped_post.id, asset: "CKB", amount: "1", to_user_id: reader.id, from_user_id: author.id },
    )
    expect(response.status).to eq(200)
    expect(stub).to have_been_requested
    expect(response.parsed_body["result"]["tip_id"]).to eq("t")
  end

  it "refuses tipping one's own post without calling the service" do
    sign_in(author)
    rpc("tip.create", { post_id: tipped_post.id, asset: "CKB", amount: "1" })
    expect(response.parsed_body["error"]["reason"]).to eq("self_tip")
    expect(WebMock).not_to have_requested(:post, "#{service}/rpc")
  end

  it "refuses a post the user cannot see" do
    tipped_post.topic.update!(category: Fabricate(:private_category, group: Fabricate(:group)))
    sign_in(reader)
    rpc("tip.create", { post_id: tipped_post.id, asset: "CKB", amount: "1" })
    expect(response.parsed_body["error"]["reason"]).to eq("post_not_found")
  end

  it "never forwards methods outside the allow-list" do
    sign_in(reader)
    rpc("tip.settled_feed")
    expect(response.parsed_body["error"]["reason"]).to eq("method_not_allowed")
    expect(WebMock).not_to have_requested(:post, "#{service}/rpc")
  end

  it "does not serialize the app secret to the client" do
    get "/site.json"
    expect(response.body).not_to include(SiteSetting.fiber_link_app_secret)
  end
end
