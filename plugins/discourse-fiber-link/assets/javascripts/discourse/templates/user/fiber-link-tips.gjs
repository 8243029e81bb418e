import FiberLinkDashboard from "../../components/fiber-link-dashboard";

export default <template>
  <section class="user-content fiber-link-user-tips" id="user-content">
    <FiberLinkDashboard @user={{@model}} />
  </section>
</template>
