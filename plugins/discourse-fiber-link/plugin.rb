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
  # Whether the current user may tip this post; the tip button renders only where this is true.
  # The proxy checks the same rules again when a tip is created.
  add_to_serializer(
    :post,
    :fiber_link_can_tip,
    include_condition: -> { SiteSetting.fiber_link_enabled && scope.user.present? },
  ) { FiberLink.can_tip?(scope, object) }

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
