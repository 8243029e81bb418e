# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe "Fiber Link author's dashboard page" do
  fab!(:user)

  before { SiteSetting.fiber_link_enabled = true }

  it "serves the app for /u/:username/tips on a full page load" do
    sign_in(user)
    get "/u/#{user.username}/tips"
    expect(response.status).to eq(200)
    expect(response.media_type).to eq("text/html")
  end

  it "is a user page like the others: an unknown user is a 404" do
    sign_in(user)
    get "/u/no-such-user-here/tips"
    expect(response.status).to eq(404)
  end

  it "still serves the app at the dashboard's old address" do
    sign_in(user)
    get "/fiber-link"
    expect(response.status).to eq(200)
  end

  it "is not there when the plugin is disabled" do
    SiteSetting.fiber_link_enabled = false
    sign_in(user)
    get "/fiber-link.json"
    expect(response.status).to eq(404)
  end
end
