# frozen_string_literal: true

module ::FiberLink
  # GET /fiber-link, the dashboard's old address: a full page load gets the Ember app shell
  # (Discourse's check_xhr renders it for non-XHR requests), and the client-side route sends the
  # user on to their /u/:username/tips (config/routes.rb serves that one through users#show).
  class DashboardController < ::ApplicationController
    requires_plugin PLUGIN_NAME

    def index
      render json: success_json
    end
  end
end
