# frozen_string_literal: true

module ::FiberLink
  class Engine < ::Rails::Engine
    engine_name PLUGIN_NAME
    isolate_namespace FiberLink
    config.autoload_paths << File.join(config.root, "lib")
  end

  # Whether the settings needed to reach the service are filled in.
  def self.configured?
    SiteSetting.fiber_link_service_url.present? && SiteSetting.fiber_link_app_id.present? &&
      SiteSetting.fiber_link_app_secret.present?
  end

  # The service client, built from site settings. The secret stays on the server.
  def self.client
    Client.new(
      base_url: SiteSetting.fiber_link_service_url,
      app_id: SiteSetting.fiber_link_app_id,
      secret: SiteSetting.fiber_link_app_secret,
      open_timeout: 3,
      read_timeout: SiteSetting.fiber_link_request_timeout_seconds,
    )
  end

  # The posts' totals, cached in Rails.cache (shared by every app server). Its client waits at
  # most 1 + 2 seconds: a topic page must not hang on the service.
  def self.post_totals
    quick =
      if configured?
        Client.new(
          base_url: SiteSetting.fiber_link_service_url,
          app_id: SiteSetting.fiber_link_app_id,
          secret: SiteSetting.fiber_link_app_secret,
          open_timeout: 1,
          read_timeout: 2,
        )
      else
        UnconfiguredClient.new
      end
    PostTotals.new(
      client: quick,
      cache: Rails.cache,
      logger: Rails.logger,
    )
  end

  # The forum's rule for who may tip a post: a logged-in user who can see the post, which is
  # not deleted, is not a whisper or small action, and has a real author other than the viewer.
  def self.can_tip?(guardian, post)
    user = guardian&.user
    return false if user.nil? || post.nil?
    return false if post.deleted_at.present? || post.topic.nil? || post.topic.deleted_at.present?
    return false if post.user_id.nil? || post.user_id <= 0 || post.user_id == user.id
    return false if post.post_type != Post.types[:regular]

    guardian.can_see?(post)
  end

  def self.proxy_for(guardian)
    RpcProxy.new(
      client: configured? ? client : UnconfiguredClient.new,
      enabled: -> { SiteSetting.fiber_link_enabled },
      tip_limits: -> do
        { min: SiteSetting.fiber_link_tip_min_amount, max: SiteSetting.fiber_link_tip_max_amount }
      end,
      post_lookup: ->(post_id, _viewer) do
        next nil unless post_id.to_s.match?(/\A\d{1,18}\z/)

        post = Post.find_by(id: post_id.to_i)
        next nil unless post && guardian.can_see?(post)
        next nil if post.deleted_at.present? || post.topic.nil? || post.topic.deleted_at.present?
        next nil if post.post_type != Post.types[:regular]

        author_id = post.user_id.to_i.positive? ? post.user_id.to_s : nil
        RpcProxy::PostRef.new(id: post.id.to_s, author_id:)
      end,
      user_lookup: ->(ids) do
        numeric = ids.select { |i| i.match?(/\A\d{1,18}\z/) }.map(&:to_i)
        User.where(id: numeric).pluck(:id, :username).to_h { |id, name| [id.to_s, name] }
      end,
      qr: ->(text) { Qr.data_url(text) },
      logger: Rails.logger,
    )
  end

  # Stands in for the client until an admin fills in the settings: every call is one clear error.
  class UnconfiguredClient
    def call(_method, _params = {})
      raise Client::TransportError.new("Fiber Link is not configured", reason: "service_unavailable")
    end
  end
end
