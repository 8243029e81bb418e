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

  # The categories where tips are allowed (fiber_link_categories; empty: all of them).
  def self.tip_category_ids
    SiteSetting.fiber_link_categories.to_s.split("|").map(&:to_i).reject(&:zero?)
  end

  # A user preference (Preferences::ALLOW_TIPS or TIP_NOTIFICATIONS) as stored, nil when never
  # set. Read from the table, not through user.custom_fields, which raises when another caller
  # preloaded the user's custom fields without this one.
  def self.user_preference(user_id, name)
    UserCustomField.where(user_id:, name:).order(id: :desc).pick(:value)
  end

  # What the tipping rule needs to know about authors, for many at once (a topic page): whether
  # each allows tips (the custom field as stored) and whether it is an anonymous-posting shadow
  # account (AnonymousShadowCreator's: it has an anonymous_users row; core's User#anonymous? also
  # requires anonymous posting to be on now, and this does not, so a shadow stays untippable
  # after the setting is turned off). Two queries whatever the number of authors.
  def self.author_prefs(user_ids)
    ids = user_ids.compact.map(&:to_i).select(&:positive?).uniq
    return {} if ids.empty?

    allow = UserCustomField.where(user_id: ids, name: Preferences::ALLOW_TIPS).order(:id).pluck(:user_id, :value).to_h
    shadows = AnonymousUser.where(user_id: ids).pluck(:user_id).to_set
    ids.to_h { |id| [id, { allow_tips: allow[id], anonymous: shadows.include?(id) }] }
  end

  # The same for one author (nil for the system user and bots, which the rule refuses anyway).
  def self.author_prefs_for(author)
    author_prefs([author.id])[author.id]
  end

  # Whether Discourse can confirm a session here: its confirm-session endpoint (password or
  # passkey) answers 404 when DiscourseConnect is on or local logins are off.
  def self.confirm_session_available?
    !SiteSetting.enable_discourse_connect && SiteSetting.enable_local_logins
  end

  # Whether the user confirmed their session (POST /u/confirm-session), within the hour the
  # secure session keeps it. On forums where sessions cannot be confirmed (where Discourse turns
  # second factors off too), only when the admin allowed withdrawals without any confirmation;
  # otherwise the controller refuses withdrawals there (withdrawals_unavailable).
  def self.session_confirmed?(user, secure_session)
    return SiteSetting.fiber_link_allow_unconfirmed_withdrawals unless confirm_session_available?

    secure_session["confirmed-session-#{user.id}"] == "true"
  end

  # The viewer the proxy works for: always the logged-in user, never anything the browser says.
  def self.viewer_for(user, session_confirmed: false)
    RpcProxy::Viewer.new(id: user.id.to_s, admin: user.admin?, session_confirmed: session_confirmed == true)
  end

  def self.proxy_for(guardian)
    RpcProxy.new(
      client: configured? ? client : UnconfiguredClient.new,
      enabled: -> { SiteSetting.fiber_link_enabled },
      tip_limits: -> do
        { min: SiteSetting.fiber_link_tip_min_amount, max: SiteSetting.fiber_link_tip_max_amount }
      end,
      # The post as the viewer may tip it, by the one rule (Guardian#can_tip_post?).
      post_lookup: ->(post_id, _viewer) do
        next nil unless post_id.to_s.match?(/\A[1-9][0-9]{0,17}\z/)

        post = Post.find_by(id: post_id.to_i)
        next nil unless post

        RpcProxy::PostRef.new(
          id: post.id.to_s,
          author_id: post.user_id.to_s,
          refusal: guardian.fiber_link_tip_refusal(post),
        )
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
