# frozen_string_literal: true

module FiberLink
  # The forum's one rule for who may tip which post. Pure Ruby: it decides from plain facts, which
  # the Guardian extension (FiberLink::GuardianExtension#can_tip_post?) gathers from Discourse's
  # models. The post serializer (where the Tip button shows) and the RPC proxy (tip.create) both
  # ask the Guardian, so the rule is written once, here.
  #
  # It fails closed: a fact that is missing or not what a tippable post needs (nil where a true or
  # false is expected) refuses.
  class TipPolicy
    # What the decision needs to know. Flags are true or false; anything else refuses.
    Facts =
      Struct.new(
        :enabled, # the plugin's enabled setting
        :viewer_id, # the logged-in user's id; nil for an anonymous visitor
        :viewer_in_allowed_groups, # the viewer is in fiber_link_allowed_groups
        :post_found, # the post exists
        :post_visible, # the viewer may see it (Guardian#can_see?)
        :post_deleted, # the post is trashed
        :post_regular, # a regular post (not a whisper, small action or moderator action)
        :topic_found, # its topic exists and is not trashed
        :category_id, # its topic's category (nil for a personal message)
        :author_id, # the post's user id
        :author_found, # that user exists
        :author_staged, # a staged user (created from an email, never logged in)
        :author_suspended, # suspended now
        :author_anonymous, # an anonymous-posting shadow account (AnonymousShadowCreator)
        :author_allow_tips, # the author's fiber_link_allow_tips custom field, as stored
        keyword_init: true,
      )

    # Why a tip is refused, in the order the checks run, with how the proxy reports each one:
    # [JSON-RPC code, reason, message]. Everything about a post the viewer cannot tip because it
    # is missing, hidden or not a regular post is one answer, so nothing leaks about hidden posts.
    REFUSALS = {
      plugin_disabled: [-32_000, "plugin_disabled", "tipping is turned off on this forum"],
      not_logged_in: [-32_001, "not_logged_in", "log in to use tipping"],
      post_missing: [-32_002, "post_not_found", "that post does not exist or is not visible to you"],
      post_not_visible: [-32_002, "post_not_found", "that post does not exist or is not visible to you"],
      post_deleted: [-32_002, "post_not_found", "that post does not exist or is not visible to you"],
      topic_missing: [-32_002, "post_not_found", "that post does not exist or is not visible to you"],
      post_not_regular: [-32_002, "post_not_found", "that post does not exist or is not visible to you"],
      viewer_not_allowed: [-32_009, "tipping_not_allowed", "your account cannot send tips on this forum"],
      category_not_allowed: [-32_009, "category_not_allowed", "tips are not enabled in this category"],
      own_post: [-32_602, "self_tip", "you cannot tip your own post"],
      author_missing: [-32_602, "post_author_missing", "that post has no author who can be tipped"],
      author_not_human: [-32_602, "post_author_missing", "that post has no author who can be tipped"],
      author_staged: [-32_009, "author_not_tippable", "the author of this post does not accept tips"],
      author_suspended: [-32_009, "author_not_tippable", "the author of this post does not accept tips"],
      author_anonymous: [-32_009, "author_not_tippable", "the author of this post does not accept tips"],
      author_opted_out: [-32_009, "author_not_tippable", "the author of this post does not accept tips"],
    }.freeze

    # allowed_category_ids: the fiber_link_categories setting as integers; empty means every
    # category (and personal messages).
    def initialize(allowed_category_ids: [])
      @allowed_category_ids = Array(allowed_category_ids).map(&:to_i).reject(&:zero?)
    end

    # Whether the viewer in `facts` may tip the post.
    def allowed?(facts)
      refusal(facts).nil?
    end

    # Whether a logged-in member could tip the post (what an anonymous visitor is shown: the
    # button, which asks them to log in). The viewer's own checks are skipped: being logged in,
    # the allowed groups, and the post being their own.
    def tippable?(facts)
      refusal(facts, as_member: true).nil?
    end

    # The first reason the tip is refused (a key of REFUSALS), or nil when it is allowed.
    def refusal(facts, as_member: false)
      return :plugin_disabled unless facts.enabled == true
      return :not_logged_in if !as_member && !id?(facts.viewer_id)

      refusal = post_refusal(facts)
      return refusal if refusal
      return :viewer_not_allowed if !as_member && facts.viewer_in_allowed_groups != true
      return :category_not_allowed unless category_allowed?(facts.category_id)
      return :own_post if !as_member && facts.author_id.to_s == facts.viewer_id.to_s

      author_refusal(facts)
    end

    # [code, reason, message] for a refusal key.
    def self.error_for(refusal)
      REFUSALS.fetch(refusal) { REFUSALS[:post_missing] }
    end

    private

    def post_refusal(facts)
      return :post_missing unless facts.post_found == true
      return :post_not_visible unless facts.post_visible == true
      return :post_deleted unless facts.post_deleted == false
      return :topic_missing unless facts.topic_found == true

      :post_not_regular unless facts.post_regular == true
    end

    def author_refusal(facts)
      return :author_missing unless facts.author_found == true && id?(facts.author_id)
      return :author_not_human unless facts.author_id.to_s.match?(/\A[1-9][0-9]*\z/)
      return :author_staged unless facts.author_staged == false
      return :author_suspended unless facts.author_suspended == false
      return :author_anonymous unless facts.author_anonymous == false

      :author_opted_out unless Preferences.on?(facts.author_allow_tips)
    end

    def category_allowed?(category_id)
      return true if @allowed_category_ids.empty?

      !category_id.nil? && @allowed_category_ids.include?(category_id.to_i)
    end

    def id?(value)
      !value.nil? && value.to_s.match?(/\A-?[0-9]+\z/)
    end
  end
end
