# frozen_string_literal: true

# Needs a Discourse checkout (see spec/README.md); not run by scripts/plugin-test.sh.
RSpec.describe PostSerializer do
  fab!(:author) { Fabricate(:user, refresh_auto_groups: true) }
  fab!(:reader) { Fabricate(:user, refresh_auto_groups: true) }
  fab!(:category)
  fab!(:topic) { Fabricate(:topic, user: author, category:) }
  fab!(:post_1) { Fabricate(:post, topic:, user: author) }

  before { SiteSetting.fiber_link_enabled = true }

  def json_for(viewer, post = post_1)
    described_class.new(post, scope: Guardian.new(viewer), root: false).as_json
  end

  def can_tip(viewer, post = post_1)
    json_for(viewer, post)[:fiber_link_can_tip]
  end

  it "lets a reader tip someone else's post" do
    expect(can_tip(reader)).to eq(true)
  end

  it "does not let authors tip their own posts" do
    expect(can_tip(author)).to eq(false)
  end

  it "is absent when the plugin is off" do
    SiteSetting.fiber_link_enabled = false
    expect(json_for(reader)).not_to have_key(:fiber_link_can_tip)
    expect(json_for(nil)).not_to have_key(:fiber_link_can_tip)
  end

  it "is false for a deleted post, a whisper and a small action" do
    whisper = Fabricate(:post, topic:, user: author, post_type: Post.types[:whisper])
    expect(can_tip(Fabricate(:admin, refresh_auto_groups: true), whisper)).to eq(false)
    small_action = Fabricate(:post, topic:, user: author, post_type: Post.types[:small_action])
    expect(can_tip(reader, small_action)).to eq(false)
    post_1.trash!
    expect(can_tip(Fabricate(:admin, refresh_auto_groups: true), post_1.reload)).to eq(false)
  end

  it "is false for users outside the allowed groups" do
    SiteSetting.fiber_link_allowed_groups = Group::AUTO_GROUPS[:trust_level_4].to_s
    expect(can_tip(reader)).to eq(false)
    expect(can_tip(Fabricate(:user, trust_level: TrustLevel[4], refresh_auto_groups: true))).to eq(true)
  end

  it "is false outside the allowed categories" do
    SiteSetting.fiber_link_categories = Fabricate(:category).id.to_s
    expect(can_tip(reader)).to eq(false)
    SiteSetting.fiber_link_categories = "#{category.id}|#{Fabricate(:category).id}"
    expect(can_tip(reader)).to eq(true)
  end

  it "is false for posts by the system user and by staged, suspended or anonymous users" do
    [
      Discourse.system_user,
      Fabricate(:staged),
      Fabricate(:user, suspended_till: 1.year.from_now, suspended_at: Time.zone.now),
      Fabricate(:anonymous),
    ].each do |user|
      expect(can_tip(reader, Fabricate(:post, topic:, user:))).to eq(false), user.username
    end
  end

  it "follows the author's preference, on by default" do
    author.custom_fields[FiberLink::Preferences::ALLOW_TIPS] = false
    author.save_custom_fields
    expect(can_tip(reader)).to eq(false)
    author.custom_fields[FiberLink::Preferences::ALLOW_TIPS] = true
    author.save_custom_fields
    expect(can_tip(reader)).to eq(true)
  end

  describe "for a visitor who is not logged in" do
    it "says whether a member could tip the post, so the button can ask them to log in" do
      expect(can_tip(nil)).to eq(true)
    end

    it "is false when no member could tip it" do
      author.custom_fields[FiberLink::Preferences::ALLOW_TIPS] = false
      author.save_custom_fields
      expect(can_tip(nil)).to eq(false)
      expect(can_tip(nil, Fabricate(:post, topic:, user: Discourse.system_user))).to eq(false)
      SiteSetting.fiber_link_categories = Fabricate(:category).id.to_s
      expect(can_tip(nil, Fabricate(:post, topic:, user: reader))).to eq(false)
    end

    it "ignores the allowed groups, which only apply to members" do
      SiteSetting.fiber_link_allowed_groups = Group::AUTO_GROUPS[:trust_level_4].to_s
      expect(can_tip(nil)).to eq(true)
    end
  end

  describe "on a topic page" do
    fab!(:opted_out) do
      Fabricate(:user).tap do |u|
        u.custom_fields[FiberLink::Preferences::ALLOW_TIPS] = false
        u.save_custom_fields
      end
    end
    fab!(:post_2) { Fabricate(:post, topic:, user: opted_out) }
    fab!(:post_3) { Fabricate(:post, topic:, user: reader) }

    it "gives every post the same answer as the single-post rule, with the authors read at once" do
      topic_view = TopicView.new(topic.id, reader)
      json = TopicViewSerializer.new(topic_view, scope: Guardian.new(reader), root: false).as_json
      can = json[:post_stream][:posts].to_h { |p| [p[:id], p[:fiber_link_can_tip]] }
      expect(can).to eq(post_1.id => true, post_2.id => false, post_3.id => false)
    end
  end
end
