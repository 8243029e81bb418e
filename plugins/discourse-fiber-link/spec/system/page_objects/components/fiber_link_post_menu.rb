# frozen_string_literal: true

module PageObjects
  module Components
    # The plugin's part of a post's menu: the Tip button and what the post has received.
    class FiberLinkPostMenu < PageObjects::Components::Base
      def initialize(post)
        super()
        @post = post
      end

      def post_selector
        ".topic-post:not(.staged) #post_#{@post.post_number}"
      end

      def tip_button
        find("#{post_selector} .post-controls .fiber-link-tip-button")
      end

      def has_tip_button?
        has_css?("#{post_selector} .post-controls .fiber-link-tip-button")
      end

      def has_no_tip_button?
        has_no_css?("#{post_selector} .post-controls .fiber-link-tip-button")
      end

      def click_tip
        tip_button.click
        self
      end

      def has_totals?(text)
        has_css?("#{post_selector} .post-controls .fiber-link-post-totals", text:)
      end
    end
  end
end
