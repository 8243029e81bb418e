# frozen_string_literal: true

module FiberLink
  # Whether the author of a tipped post is told that the tip settled, and what the notification
  # says. Pure Ruby: FiberLink::TipNotifier gathers the facts from Discourse and creates the
  # Notification.
  #
  # The notification is core's `custom` type, as discourse-solved uses: core's renderer shows
  # `display_username` as who, `topic_title` as what, links to topic_id/post_number (set on the
  # notification row), takes its icon from `message` (the client registers
  # notification.fiber_link.notification.tip_received) and its tooltip from `title`. `amount`,
  # `asset` and `tip_id` are there for the client to show the amount.
  module TipNotification
    MESSAGE = "fiber_link.notification.tip_received"
    TITLE = "fiber_link.notification.title"

    Facts =
      Struct.new(
        :notifications_enabled, # the fiber_link_notifications_enabled setting
        :recipient_found, # the tipped author exists
        :recipient_id,
        :recipient_tip_notifications, # their fiber_link_tip_notifications custom field, as stored
        :post_found, # the tipped post exists, is not trashed, and its topic exists
        :recipient_can_see_post, # Guardian.new(author).can_receive_post_notifications?(post)
        :payer_muted_or_ignored, # the author mutes or ignores the payer (UserCommScreener)
        keyword_init: true,
      )

    # Why no notification is created (a symbol), or nil to notify. Fails closed like the policy:
    # a fact that is not known is a reason not to notify.
    def self.skip_reason(facts)
      return :notifications_disabled unless facts.notifications_enabled == true
      return :recipient_missing unless facts.recipient_found == true
      return :recipient_not_human unless facts.recipient_id.to_s.match?(/\A[1-9][0-9]*\z/)
      return :recipient_opted_out unless Preferences.on?(facts.recipient_tip_notifications)
      return :post_gone unless facts.post_found == true
      return :post_not_visible unless facts.recipient_can_see_post == true

      :payer_muted unless facts.payer_muted_or_ignored == false
    end

    # The notification's data (stored as JSON on the Notification row).
    def self.data(tip:, payer_username:, topic_title:, post_id:)
      {
        message: MESSAGE,
        title: TITLE,
        display_username: payer_username,
        topic_title:,
        original_post_id: post_id,
        amount: tip["amount"].to_s,
        asset: tip["asset"].to_s,
        tip_id: tip["tip_id"].to_s,
      }
    end
  end
end
