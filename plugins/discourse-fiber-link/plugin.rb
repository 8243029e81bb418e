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
end
