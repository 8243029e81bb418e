import FiberLinkDashboard from "../components/fiber-link-dashboard";

export default <template><FiberLinkDashboard /></template>
