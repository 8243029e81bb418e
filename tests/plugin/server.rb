# frozen_string_literal: true

# The harness's forum server: a small Rack app (Debian's ruby-rack + ruby-webrick) that serves
# the page and the bundle, and mounts the plugin's real proxy core (FiberLink::RpcProxy) at
# POST /fiber-link/rpc, forwarding through the plugin's real FiberLink::Client to the real
# Fiber Link service. Only Discourse is stood in for: the viewer comes from a cookie, the posts
# from a fixed list, and Discourse's confirm-session endpoints (password only) are reduced to one
# in-memory flag per user. The tipping rule is the plugin's real FiberLink::TipPolicy, fed the
# facts Discourse's Guardian would gather, and so is the proxy's withdrawal rule: a withdrawal
# request is refused (confirm_session_required) until the user confirmed their password with
# POST /u/confirm-session.json (every harness user's password is HARNESS_PASSWORD below).
#
#   ruby tests/plugin/server.rb PORT    (env: FIBER_LINK_API_URL, FIBER_LINK_APP_ID,
#                                          FIBER_LINK_APP_SECRET)
# Prints "listening on http://127.0.0.1:PORT" when ready.

$LOAD_PATH.unshift File.expand_path("../../plugins/discourse-fiber-link/lib", __dir__)

require "json"
require "logger"
require "rack"
require "rack/handler/webrick"
require "yaml"
require "fiber_link/client"
require "fiber_link/preferences"
require "fiber_link/qr"
require "fiber_link/rpc_proxy"
require "fiber_link/tip_policy"
require "fiber_link/post_totals"
require "fiber_link/settled_feed_sync"

PLUGIN = File.expand_path("../../plugins/discourse-fiber-link", __dir__)
HERE = __dir__

# Numeric ids like Discourse's, different on every start so runs never share a user.
base = (Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond) % 100_000_000) * 10
USERS = { "carol" => (base + 1).to_s, "bob" => (base + 2).to_s }.freeze
NAMES = USERS.invert.freeze
POSTS = [
  { id: (base + 101).to_s, author: "bob", cooked: "Bob explains how Fiber channels route payments." },
  { id: (base + 102).to_s, author: "carol", cooked: "Carol's own post (no Tip button for her)." },
].freeze

# Site settings as Discourse would serve them to the client: the client: true ones, defaults.
settings = YAML.safe_load_file(File.join(PLUGIN, "config/settings.yml"))["discourse_fiber_link"]
CLIENT_SETTINGS = settings.select { |_, v| v["client"] }.transform_values { |v| v["default"] }
                          .merge("fiber_link_enabled" => true).freeze
LOCALE = YAML.safe_load_file(File.join(PLUGIN, "config/locales/client.en.yml"))["en"]["js"]

# Discourse's confirm-session, reduced: POST /u/confirm-session.json with this password marks
# the user's session confirmed for an hour (core keeps it in the secure session for as long).
HARNESS_PASSWORD = "fiber-link-harness"
CONFIRMED = {} # username => Time the confirmation expires
CONFIRMED_LOCK = Mutex.new
def session_confirmed?(name)
  CONFIRMED_LOCK.synchronize { (CONFIRMED[name] || Time.at(0)) > Time.now }
end

# The tipping rule, with the facts Discourse's Guardian gathers (FiberLink::GuardianExtension):
# every harness user is in the allowed groups; every post is a visible regular post of a plain
# author who never changed the "allow tips" preference; all categories are allowed.
TIP_POLICY = FiberLink::TipPolicy.new(allowed_category_ids: [])
def tip_facts(post, viewer_id)
  FiberLink::TipPolicy::Facts.new(
    enabled: true,
    viewer_id:,
    viewer_in_allowed_groups: !viewer_id.nil?,
    post_found: !post.nil?,
    post_visible: !post.nil?,
    post_deleted: false,
    post_regular: true,
    topic_found: true,
    category_id: 1,
    author_id: post && USERS[post[:author]],
    author_found: !post.nil?,
    author_staged: false,
    author_suspended: false,
    author_anonymous: false,
    author_allow_tips: nil,
  )
end

# Every call that reaches the service, so a test can check what was (not) forwarded.
class Recorder
  attr_reader :calls

  def initialize(client)
    @client = client
    @calls = []
    @lock = Mutex.new
  end

  def call(method, params = {})
    @lock.synchronize { @calls << { "method" => method, "params" => params } }
    @client.call(method, params)
  end
end

CLIENT = Recorder.new(
  FiberLink::Client.new(
    base_url: ENV.fetch("FIBER_LINK_API_URL"),
    app_id: ENV.fetch("FIBER_LINK_APP_ID"),
    secret: ENV.fetch("FIBER_LINK_APP_SECRET"),
  ),
)

PROXY = FiberLink::RpcProxy.new(
  client: CLIENT,
  enabled: -> { true },
  tip_limits: lambda do
    { min: CLIENT_SETTINGS["fiber_link_tip_min_amount"], max: CLIENT_SETTINGS["fiber_link_tip_max_amount"] }
  end,
  post_lookup: lambda do |post_id, viewer|
    post = POSTS.find { |p| p[:id] == post_id.to_s }
    post && FiberLink::RpcProxy::PostRef.new(
      id: post[:id],
      author_id: USERS[post[:author]],
      refusal: TIP_POLICY.refusal(tip_facts(post, viewer.id)),
    )
  end,
  user_lookup: ->(ids) { ids.to_h { |id| [id, NAMES[id] || id] } },
  qr: ->(text) { FiberLink::Qr.data_url(text) },
  logger: Logger.new($stderr),
)

# The posts' totals as the plugin keeps them: cached, and dropped for a post when the settled-tips
# feed (the job's, run here before each page) shows a new settlement on it.
TOTALS = FiberLink::PostTotals.new(client: CLIENT, cache: FiberLink::PostTotals::MemoryCache.new)
FEED_STORE = FiberLink::SettledFeedSync::MemoryStore.new
def settled_feed(notifier)
  FiberLink::SettledFeedSync.new(client: CLIENT, store: FEED_STORE, notifier:, page_size: 500, max_pages: 1000).run
end
settled_feed(->(_tip) {}) # start at the feed's end: earlier runs' tips are not this forum's posts
FEED_LOCK = Mutex.new

def json(status, body)
  [status, { "content-type" => "application/json" }, [JSON.generate(body)]]
end

# A request's params as Discourse's ajax sends them (form-encoded) or as JSON.
def form_or_json(req)
  if req.media_type == "application/json"
    body = JSON.parse(req.body.read)
    body.is_a?(Hash) ? body : {}
  else
    req.POST
  end
rescue JSON::ParserError
  {}
end

def file(path, type)
  return [404, {}, ["not built: #{path}"]] unless File.exist?(path)

  [200, { "content-type" => type, "cache-control" => "no-store" }, [File.binread(path)]]
end

APP = lambda do |env|
  req = Rack::Request.new(env)
  viewer_name = req.cookies["harness_user"]
  viewer_id = USERS[viewer_name]
  case [req.request_method, req.path_info]
  when %w[GET /]
    file(File.join(HERE, "harness.html"), "text/html; charset=utf-8")
  when %w[GET /harness.js]
    file(File.join(HERE, "dist/harness.js"), "text/javascript")
  when %w[GET /fiber-link.css]
    file(File.join(HERE, "dist/fiber-link.css"), "text/css")
  when %w[GET /boot.json]
    # What Discourse's serializers would give this viewer, including fiber_link_can_tip (for a
    # visitor who is not logged in: whether a member could tip the post) and the totals (one
    # post.totals call for every post not cached).
    totals = FEED_LOCK.synchronize do
      settled_feed(->(tip) { TOTALS.invalidate([tip["post_id"].to_s]) })
      TOTALS.for_posts(POSTS.map { |p| p[:id] })
    end
    posts = POSTS.map do |p|
      facts = tip_facts(p, viewer_id)
      { id: p[:id], username: p[:author], cooked: p[:cooked],
        fiber_link_can_tip: viewer_id ? TIP_POLICY.allowed?(facts) : TIP_POLICY.tippable?(facts),
        fiber_link_totals: totals[p[:id]] || [] }
    end
    current_user = viewer_id && { id: viewer_id, username: viewer_name }
    json(200, { locale: LOCALE, siteSettings: CLIENT_SETTINGS, currentUser: current_user, posts: })
  when ["POST", "/fiber-link/rpc"]
    # Discourse's ensure_logged_in and CSRF check, reduced to what the harness needs.
    return json(403, { errors: ["not logged in"], error_type: "not_logged_in" }) unless viewer_id
    return json(403, { errors: ["BAD CSRF"] }) unless req.get_header("HTTP_X_CSRF_TOKEN")

    payload =
      begin
        JSON.parse(req.body.read)
      rescue JSON::ParserError
        nil
      end
    unless payload.is_a?(Hash)
      return json(200, { error: { code: -32_700, reason: "parse_error", message: "bad body" } })
    end

    viewer = FiberLink::RpcProxy::Viewer.new(id: viewer_id, admin: false,
                                             session_confirmed: session_confirmed?(viewer_name))
    status, body = PROXY.call(viewer:, method: payload["method"].to_s, params: payload["params"] || {})
    json(status, body)
  when ["POST", "/u/confirm-session.json"]
    # core: success_json, or failed_json with the reason (login.incorrect_password_or_passkey)
    return json(403, { errors: ["not logged in"], error_type: "not_logged_in" }) unless viewer_id
    return json(403, { errors: ["BAD CSRF"] }) unless req.get_header("HTTP_X_CSRF_TOKEN")

    password = form_or_json(req)["password"]
    if password.to_s.empty?
      json(400, { errors: ["Missing password or passkey"], error_type: "invalid_parameters" })
    elsif password == HARNESS_PASSWORD
      CONFIRMED_LOCK.synchronize { CONFIRMED[viewer_name] = Time.now + 3600 }
      json(200, { success: "OK" })
    else
      json(200, { failed: "FAILED", error: "Incorrect password or passkey" })
    end
  when %w[GET /u/trusted-session.json]
    return json(403, { errors: ["not logged in"], error_type: "not_logged_in" }) unless viewer_id

    json(200, session_confirmed?(viewer_name) ? { success: "OK" } : { failed: "FAILED" })
  when %w[POST /__forget-sessions]
    # test control: every user has to confirm again
    CONFIRMED_LOCK.synchronize { CONFIRMED.clear }
    json(200, { ok: true })
  when %w[GET /__calls]
    json(200, CLIENT.calls)
  else
    [404, { "content-type" => "text/plain" }, ["not found"]]
  end
end

port = Integer(ARGV.fetch(0, "0"))
Rack::Handler::WEBrick.run(
  APP,
  Host: "127.0.0.1",
  Port: port,
  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN),
  AccessLog: [],
  StartCallback: -> { $stdout.puts("listening on http://127.0.0.1:#{port}") || $stdout.flush },
)
