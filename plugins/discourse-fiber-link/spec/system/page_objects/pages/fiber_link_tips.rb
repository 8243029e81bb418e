# frozen_string_literal: true

module PageObjects
  module Pages
    # The user's tips page, /u/:username/tips (balances, tips, withdrawals).
    class FiberLinkTips < PageObjects::Pages::Base
      def visit(user)
        page.visit("/u/#{user.username_lower}/tips")
        self
      end

      def has_available?(asset, amount)
        has_css?("tr[data-asset='#{asset}'] .fiber-link-dashboard__available", text: amount)
      end

      def withdraw_to_invoice(invoice, amount)
        find("input[name='fiber-link-kind'][value='fiber_invoice']").click
        find("#fiber-link-destination").fill_in(with: invoice)
        find("#fiber-link-withdraw-amount").fill_in(with: amount)
        find(".fiber-link-withdrawals__review").click
        self
      end

      def confirm_withdrawal
        find(".fiber-link-withdrawals__confirm").click
        self
      end

      # core's confirm-session dialog (ConfirmSession in a dialog-holder dialog)
      def has_confirm_session_dialog?
        has_css?(".dialog-body .confirm-session")
      end

      def confirm_session(password)
        find(".dialog-body .confirm-session #password").fill_in(with: password)
        find(".dialog-body .confirm-session .btn-primary").click
        self
      end

      def has_withdrawal?(state)
        has_css?(".fiber-link-withdrawals__history tr[data-state='#{state}']")
      end
    end
  end
end
