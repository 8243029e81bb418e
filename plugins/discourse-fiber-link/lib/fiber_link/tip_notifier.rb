# frozen_string_literal: true

module FiberLink
  # Tells a post's author that a tip to them settled, as a Discourse notification.
  class TipNotifier
    def call(tip)
      recipient = user(tip["to_user_id"])
      return if recipient.nil?

      payer = user(tip["from_user_id"])
      post = tip["post_id"].to_s.match?(/\A\d{1,18}\z/) ? Post.find_by(id: tip["post_id"].to_i) : nil
      Notification.create!(
        notification_type: Notification.types[:custom],
        user_id: recipient.id,
        topic_id: post&.topic_id,
        post_number: post&.post_number,
        data: {
          message: "fiber_link.notification.tip_received",
          title: "fiber_link.notification.title",
          display_username: payer&.username,
          amount: tip["amount"],
          asset: tip["asset"],
          tip_id: tip["tip_id"],
        }.to_json,
      )
    end

    private

    def user(id)
      id.to_s.match?(/\A\d{1,18}\z/) ? User.find_by(id: id.to_i) : nil
    end
  end
end
