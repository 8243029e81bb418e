# frozen_string_literal: true

module FiberLink
  # Prepended to ::Guardian (plugin.rb, in reloadable_patch, as discourse-solved does). The rule
  # itself is FiberLink::TipPolicy; these methods gather its facts from Discourse's models.
  #
  # author_prefs: what a topic page preloads for all its authors in two queries
  # (FiberLink.author_prefs: { allow_tips:, anonymous: }); without it, the author's custom field
  # and anonymous-shadow record are read for this post alone.
  module GuardianExtension
    # Whether the current user may tip this post. The serializer shows the Tip button where this
    # is true, and the RPC proxy checks it again before tip.create.
    def can_tip_post?(post, author_prefs: nil)
      fiber_link_tip_refusal(post, author_prefs:).nil?
    end

    # Whether a logged-in member could tip this post: what an anonymous visitor is shown, so that
    # the button can ask them to log in.
    def fiber_link_post_tippable?(post, author_prefs: nil)
      fiber_link_tip_refusal(post, author_prefs:, as_member: true).nil?
    end

    # Why the current user may not tip this post (a FiberLink::TipPolicy::REFUSALS key), or nil.
    def fiber_link_tip_refusal(post, author_prefs: nil, as_member: false)
      FiberLink::TipPolicy.new(allowed_category_ids: FiberLink.tip_category_ids).refusal(
        fiber_link_tip_facts(post, author_prefs),
        as_member:,
      )
    end

    private

    def fiber_link_tip_facts(post, author_prefs)
      viewer = user
      topic = post&.topic
      author = post&.user
      prefs = author_prefs || (author && FiberLink.author_prefs_for(author))
      FiberLink::TipPolicy::Facts.new(
        enabled: SiteSetting.fiber_link_enabled == true,
        viewer_id: viewer&.id,
        viewer_in_allowed_groups:
          !viewer.nil? && viewer.in_any_groups?(SiteSetting.fiber_link_allowed_groups_map),
        post_found: !post.nil?,
        post_visible: !post.nil? && can_see?(post) == true,
        post_deleted: !post.nil? && !post.deleted_at.nil?,
        post_regular: !post.nil? && post.post_type == Post.types[:regular],
        topic_found: !topic.nil? && topic.deleted_at.nil?,
        category_id: topic&.category_id,
        author_id: post&.user_id,
        author_found: !author.nil?,
        author_staged: author ? author.staged == true : nil,
        author_suspended: author ? author.suspended? == true : nil,
        author_anonymous: prefs ? prefs[:anonymous] == true : nil,
        author_allow_tips: prefs&.[](:allow_tips),
      )
    end
  end
end
