# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe PostSerializer do
  fab!(:author, :user)
  fab!(:reader, :user)
  fab!(:post) { Fabricate(:post, user: author) }

  before { SiteSetting.fiber_link_enabled = true }

  def can_tip(viewer)
    described_class.new(post, scope: Guardian.new(viewer), root: false).as_json[:fiber_link_can_tip]
  end

  it "lets a reader tip someone else's post" do
    expect(can_tip(reader)).to eq(true)
  end

  it "does not let authors tip their own posts" do
    expect(can_tip(author)).to eq(false)
  end

  it "is absent for anonymous users and when the plugin is off" do
    expect(described_class.new(post, scope: Guardian.new, root: false).as_json).not_to have_key(:fiber_link_can_tip)
    SiteSetting.fiber_link_enabled = false
    json = described_class.new(post, scope: Guardian.new(reader), root: false).as_json
    expect(json).not_to have_key(:fiber_link_can_tip)
  end

  it "is false for a deleted post" do
    post.trash!
    expect(can_tip(reader)).to eq(false)
  end
end
