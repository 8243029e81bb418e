# frozen_string_literal: true

# name: discourse-fiber-link
# about: Readers tip post authors over the CKB Fiber Network, through a Fiber Link service.
# meta_topic_id: TODO
# version: 0.1.0
# authors: Fiber Link
# url: https://github.com/fiber-link/fiber-link/tree/main/plugins/discourse-fiber-link

enabled_site_setting :fiber_link_enabled

register_asset "stylesheets/common/fiber-link.scss"
register_svg_icon "bolt"
register_svg_icon "copy"
register_svg_icon "wallet"

module ::FiberLink
  PLUGIN_NAME = "discourse-fiber-link"
end

require_relative "lib/fiber_link/engine"

after_initialize do
  # The one tipping rule (FiberLink::TipPolicy), asked through Guardian#can_tip_post? by the post
  # serializer below and by the RPC proxy (FiberLink.proxy_for).
  reloadable_patch { ::Guardian.prepend(FiberLink::GuardianExtension) }

  # The user's two preferences, on by default: "Allow others to tip my posts" and "Notify me when
  # I receive a tip". Editable by the user, and serialized to them (and staff) only: not public.
  FiberLink::Preferences::ALL.each do |field|
    register_user_custom_field_type(field, :boolean)
    register_editable_user_custom_field(field)
    DiscoursePluginRegistry.serialized_current_user_fields << field
  end

  # What the tipping rule needs about the authors of a topic page, read for all of them at once
  # (two queries), the first time a post of the page is serialized.
  add_to_class(:topic_view, :fiber_link_author_prefs) do
    @fiber_link_author_prefs ||= FiberLink.author_prefs(posts.map(&:user_id))
  end

  # Whether the current user may tip this post; the Tip button renders only where this is true,
  # and the proxy asks the same rule again when a tip is created. For a visitor who is not logged
  # in: whether a member could tip it, so that the button can ask them to log in.
  add_to_serializer(
    :post,
    :fiber_link_can_tip,
    include_condition: -> { SiteSetting.fiber_link_enabled },
  ) do
    prefs = @topic_view&.fiber_link_author_prefs&.[](object.user_id)
    if scope.user
      scope.can_tip_post?(object, author_prefs: prefs)
    else
      scope.fiber_link_post_tippable?(object, author_prefs: prefs)
    end
  end

  # What each post has received (settled tips per asset), for every post of a topic page from
  # one post.totals call, made the first time a post of the page is serialized (memoized on the
  # TopicView, as the poll plugin does; cached across pages, and the settled-tips job drops a
  # post's entry when a tip on it settles). The post stream's later pages build their own
  # TopicView and so make their own single call; a post serialized without a topic view (a
  # single-post request) carries no totals.
  add_to_class(:topic_view, :fiber_link_totals) do
    @fiber_link_totals ||= FiberLink.post_totals.for_posts(posts.map(&:id))
  end
  add_to_serializer(
    :post,
    :fiber_link_totals,
    include_condition: -> do
      SiteSetting.fiber_link_enabled && SiteSetting.fiber_link_show_totals &&
        FiberLink.configured? && @topic_view.present?
    end,
  ) { @topic_view.fiber_link_totals[object.id] || [] }
end
