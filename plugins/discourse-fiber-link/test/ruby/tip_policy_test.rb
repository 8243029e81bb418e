# frozen_string_literal: true

require_relative "test_helper"

# The forum's one tipping rule (FiberLink::TipPolicy), every rule in turn, without Discourse: the
# Guardian extension feeds it the same facts from Discourse's models.
class TipPolicyTest < Minitest::Test
  Facts = FiberLink::TipPolicy::Facts

  # A post that may be tipped: a member (id 7) in the allowed groups, looking at a visible regular
  # post in category 3 by another ordinary user (id 9) who never changed their preference.
  def facts(**overrides)
    Facts.new(
      enabled: true,
      viewer_id: 7,
      viewer_in_allowed_groups: true,
      post_found: true,
      post_visible: true,
      post_deleted: false,
      post_regular: true,
      topic_found: true,
      category_id: 3,
      author_id: 9,
      author_found: true,
      author_staged: false,
      author_suspended: false,
      author_anonymous: false,
      author_allow_tips: nil,
      **overrides,
    )
  end

  def policy(categories: [])
    FiberLink::TipPolicy.new(allowed_category_ids: categories)
  end

  def refusal(categories: [], as_member: false, **overrides)
    policy(categories:).refusal(facts(**overrides), as_member:)
  end

  def test_a_member_may_tip_someone_elses_visible_regular_post
    assert_nil refusal
    assert policy.allowed?(facts)
    assert policy.tippable?(facts)
  end

  def test_nothing_when_the_plugin_is_off
    assert_equal :plugin_disabled, refusal(enabled: false)
    assert_equal :plugin_disabled, refusal(enabled: nil)
    refute policy.tippable?(facts(enabled: false)), "anonymous visitors see no button either"
  end

  def test_the_viewer_must_be_logged_in
    assert_equal :not_logged_in, refusal(viewer_id: nil)
    assert_equal :not_logged_in, refusal(viewer_id: "")
  end

  def test_the_post_must_exist_and_be_visible_to_the_viewer
    assert_equal :post_missing, refusal(post_found: false)
    assert_equal :post_not_visible, refusal(post_visible: false)
    assert_equal :post_not_visible, refusal(post_visible: nil), "unknown visibility refuses"
  end

  def test_a_deleted_post_or_topic_cannot_be_tipped
    assert_equal :post_deleted, refusal(post_deleted: true)
    assert_equal :post_deleted, refusal(post_deleted: nil)
    assert_equal :topic_missing, refusal(topic_found: false)
  end

  def test_only_regular_posts
    assert_equal :post_not_regular, refusal(post_regular: false)
  end

  def test_the_viewer_must_be_in_the_allowed_groups
    assert_equal :viewer_not_allowed, refusal(viewer_in_allowed_groups: false)
    assert_equal :viewer_not_allowed, refusal(viewer_in_allowed_groups: nil)
  end

  def test_categories_limit_where_tips_are_allowed
    assert_nil refusal(categories: [])
    assert_nil refusal(categories: [3, 4])
    assert_equal :category_not_allowed, refusal(categories: [4])
    assert_equal :category_not_allowed, refusal(categories: [4], category_id: nil), "a personal message has no category"
    assert_nil refusal(categories: [], category_id: nil)
    assert_nil refusal(categories: ["3"]), "ids as the setting stores them"
  end

  def test_nobody_tips_their_own_post
    assert_equal :own_post, refusal(author_id: 7)
    assert_equal :own_post, refusal(author_id: "7"), "ids compared as strings"
  end

  def test_the_author_must_be_a_real_user
    assert_equal :author_missing, refusal(author_found: false)
    assert_equal :author_missing, refusal(author_id: nil)
    assert_equal :author_not_human, refusal(author_id: -1), "the system user"
    assert_equal :author_not_human, refusal(author_id: -2), "bots"
    assert_equal :author_not_human, refusal(author_id: 0)
  end

  def test_staged_suspended_and_anonymous_authors_cannot_be_tipped
    assert_equal :author_staged, refusal(author_staged: true)
    assert_equal :author_suspended, refusal(author_suspended: true)
    assert_equal :author_anonymous, refusal(author_anonymous: true)
    assert_equal :author_staged, refusal(author_staged: nil), "unknown refuses"
    assert_equal :author_suspended, refusal(author_suspended: nil)
    assert_equal :author_anonymous, refusal(author_anonymous: nil)
  end

  def test_authors_who_opted_out_cannot_be_tipped
    assert_nil refusal(author_allow_tips: nil), "never set: on by default"
    [true, "t", "true", "1", "TRUE"].each { |on| assert_nil refusal(author_allow_tips: on), on.inspect }
    [false, "f", "false", "0", "", "yes", ["t"]].each do |off|
      assert_equal :author_opted_out, refusal(author_allow_tips: off), off.inspect
    end
  end

  def test_an_anonymous_visitor_is_told_whether_a_member_could_tip
    anon = { viewer_id: nil, viewer_in_allowed_groups: false }
    assert policy.tippable?(facts(**anon)), "the button shows and asks them to log in"
    refute policy.allowed?(facts(**anon)), "but they cannot tip"
    assert_nil refusal(as_member: true, **anon)
    # the post and author rules still apply to them
    assert_equal :post_not_visible, refusal(as_member: true, post_visible: false, **anon)
    assert_equal :post_deleted, refusal(as_member: true, post_deleted: true, **anon)
    assert_equal :category_not_allowed, refusal(as_member: true, categories: [4], **anon)
    assert_equal :author_opted_out, refusal(as_member: true, author_allow_tips: "f", **anon)
    assert_equal :author_suspended, refusal(as_member: true, author_suspended: true, **anon)
    assert_equal :author_not_human, refusal(as_member: true, author_id: -1, **anon)
  end

  def test_the_post_rules_come_before_anything_that_describes_the_author
    # nothing about a hidden post's author leaks through the reason
    assert_equal :post_not_visible, refusal(post_visible: false, author_suspended: true, author_id: 7)
    assert_equal :post_missing, refusal(post_found: false, viewer_in_allowed_groups: false)
  end

  def test_every_refusal_has_a_proxy_error
    FiberLink::TipPolicy::REFUSALS.each do |key, (code, reason, message)|
      assert_kind_of Integer, code, key
      assert_match(/\A[a-z_]+\z/, reason, key)
      refute_empty message, key
    end
    assert_equal "post_not_found", FiberLink::TipPolicy.error_for(:post_not_visible)[1]
    assert_equal "post_not_found", FiberLink::TipPolicy.error_for(:post_deleted)[1]
    assert_equal "self_tip", FiberLink::TipPolicy.error_for(:own_post)[1]
    assert_equal "author_not_tippable", FiberLink::TipPolicy.error_for(:author_opted_out)[1]
    assert_equal "post_not_found", FiberLink::TipPolicy.error_for(:something_new)[1], "unknown: not found"
  end
end
