# frozen_string_literal: true

module FiberLink
  # Tells a post's author that a tip to them settled, as a Discourse notification. The decision
  # (FiberLink::TipNotification.skip_reason) and the data are plain Ruby; this class reads the
  # facts from Discourse and writes the row.
  #
  # Not through PostAlerter: it would drop every tip after the first on the same post (it keeps
  # one notification of a type per post), and each tip is news. What PostAlerter checks is done
  # here: the author can still see the post, and does not mute or ignore the payer.
  class TipNotifier
    ID = /\A[1-9][0-9]{0,17}\z/

    # Returns the Notification, or nil when none was created.
    def call(tip)
      recipient = user(tip["to_user_id"])
      payer = user(tip["from_user_id"])
      post = tip["post_id"].to_s.match?(ID) ? Post.find_by(id: tip["post_id"].to_i) : nil
      topic = post&.topic

      facts =
        TipNotification::Facts.new(
          notifications_enabled: SiteSetting.fiber_link_notifications_enabled,
          recipient_found: !recipient.nil?,
          recipient_id: recipient&.id,
          recipient_tip_notifications:
            recipient && FiberLink.user_preference(recipient.id, Preferences::TIP_NOTIFICATIONS),
          post_found: !post.nil? && post.deleted_at.nil? && !topic.nil? && topic.deleted_at.nil?,
        )
      # the checks that query run only when the cheap ones passed
      if TipNotification.skip_reason(facts) == :post_not_visible
        facts.recipient_can_see_post = Guardian.new(recipient).can_receive_post_notifications?(post)
        facts.payer_muted_or_ignored = muted_or_ignored?(recipient, payer)
      end
      return if TipNotification.skip_reason(facts)

      Notification.create!(
        notification_type: Notification.types[:custom],
        user_id: recipient.id,
        topic_id: post.topic_id,
        post_number: post.post_number,
        data:
          TipNotification.data(
            tip:,
            payer_username: payer&.username,
            topic_title: topic.title,
            post_id: post.id,
          ).to_json,
      )
    end

    private

    # Whether the author mutes or ignores the payer, as core's notifications check it (staff
    # payers are never screened). A payer who no longer exists cannot be muted.
    def muted_or_ignored?(recipient, payer)
      return false if payer.nil? || payer.id == recipient.id

      UserCommScreener.new(acting_user: payer, target_user_ids: [recipient.id]).ignoring_or_muting_actor?(
        recipient.id,
      )
    end

    def user(id)
      id.to_s.match?(ID) ? User.find_by(id: id.to_i) : nil
    end
  end
end
