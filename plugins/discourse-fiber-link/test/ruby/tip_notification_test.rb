# frozen_string_literal: true

require_relative "test_helper"

# When the author of a tipped post is notified, and what the notification carries
# (FiberLink::TipNotification; FiberLink::TipNotifier reads the facts from Discourse).
class TipNotificationTest < Minitest::Test
  N = FiberLink::TipNotification

  def facts(**overrides)
    N::Facts.new(
      notifications_enabled: true,
      recipient_found: true,
      recipient_id: 9,
      recipient_tip_notifications: nil,
      post_found: true,
      recipient_can_see_post: true,
      payer_muted_or_ignored: false,
      **overrides,
    )
  end

  def skip(**overrides)
    N.skip_reason(facts(**overrides))
  end

  def test_the_author_is_notified_by_default
    assert_nil skip
  end

  def test_not_when_the_forum_turned_notifications_off
    assert_equal :notifications_disabled, skip(notifications_enabled: false)
  end

  def test_not_without_a_real_recipient
    assert_equal :recipient_missing, skip(recipient_found: false)
    assert_equal :recipient_not_human, skip(recipient_id: -1)
    assert_equal :recipient_not_human, skip(recipient_id: nil)
  end

  def test_not_when_the_author_turned_tip_notifications_off
    [false, "f", "false", "0", ""].each do |off|
      assert_equal :recipient_opted_out, skip(recipient_tip_notifications: off), off.inspect
    end
    [nil, true, "t", "true"].each { |on| assert_nil skip(recipient_tip_notifications: on), on.inspect }
  end

  def test_not_when_the_post_is_gone_or_hidden_from_the_author
    assert_equal :post_gone, skip(post_found: false)
    assert_equal :post_not_visible, skip(recipient_can_see_post: false)
    assert_equal :post_not_visible, skip(recipient_can_see_post: nil), "not checked yet: not notified"
  end

  def test_not_when_the_author_mutes_or_ignores_the_payer
    assert_equal :payer_muted, skip(payer_muted_or_ignored: true)
    assert_equal :payer_muted, skip(payer_muted_or_ignored: nil), "not checked yet: not notified"
  end

  def test_the_cheap_checks_come_first
    # TipNotifier runs the queries (visibility, muting) only when the rest passed
    assert_equal :recipient_opted_out,
                 skip(recipient_tip_notifications: "f", recipient_can_see_post: nil, payer_muted_or_ignored: nil)
    assert_equal :post_not_visible, skip(recipient_can_see_post: nil, payer_muted_or_ignored: nil)
  end

  def test_the_notification_says_who_how_much_and_where
    tip = { "tip_id" => "t-1", "amount" => "2.5", "asset" => "CKB", "post_id" => "42" }
    data = N.data(tip:, payer_username: "carol", topic_title: "How Fiber routes", post_id: 42)
    assert_equal(
      {
        message: "fiber_link.notification.tip_received",
        title: "fiber_link.notification.title",
        display_username: "carol",
        topic_title: "How Fiber routes",
        original_post_id: 42,
        amount: "2.5",
        asset: "CKB",
        tip_id: "t-1",
      },
      data,
    )
    assert_equal data.keys.map(&:to_s), JSON.parse(JSON.generate(data)).keys, "stored as JSON as is"
  end
end
