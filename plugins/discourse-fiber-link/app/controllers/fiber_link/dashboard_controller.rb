# frozen_string_literal: true

module ::FiberLink
  # GET /fiber-link: a full page load of the dashboard gets the Ember app shell (Discourse's
  # check_xhr renders it for non-XHR requests); the page itself is the client-side route.
  class DashboardController < ::ApplicationController
    requires_plugin PLUGIN_NAME

    def index
      render json: success_json
    end
  end
end
