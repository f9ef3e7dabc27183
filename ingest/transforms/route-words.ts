/**
 * A compact list of English and API path words that are never turned into route parameters
 * (`/users/me`, `/orders/search`). Compound segments (`order-items`, `userProfile`) are split on
 * `-`, `_`, `.` and camelCase; a segment is a word when all its parts are.
 */
const WORDS = `
a about access account accounts action actions activate active activity add address addresses admin
admins alert alerts all analytics and api apis app apps approve archive article articles asset assets
attachment attachments audit auth authorize autocomplete avatar backup balance balances bank basket batch
beta billing blob blog board book booking bookings books branch branches browse bucket build bulk business
by cache calendar callback campaign campaigns cancel card cards cart carts catalog catalogue categories
category change changes channel channels charge charges chat check checkout child children claim clear
client clients close cluster code collection collections comment comments commit company companies config
configs configuration confirm connect contact contacts content contents context count countries country
coupon coupons create credit credits current customer customers dashboard data database day default delete
deliveries delivery deploy deployment deployments detail details device devices disable discount discounts
docs document documents domain domains download downloads draft drafts edit email emails enable end
endpoint endpoints entries entry error errors event events export external favorites favourites feature
features feed feedback file files filter find first flag flags folder folders follow followers following
forgot form forms friends gateway general get global graph graphql group groups health help history home
hook hooks host hosts id identity image images import inbox index info insights install instance
instances integration integrations internal invitation invitations invite invoice invoices issue issues item
items job jobs join key keys label labels language languages last latest layout ledger legacy like likes
limit limits link links list lists live load locale location locations lock log login logout logs lookup
mail manage manager media member members membership menu merchant message messages meta metadata metrics
mfa mine mobile model models month my name names new news next note notes notification notifications oauth
object objects of offer offers on open openapi operation operations option options order orders org
organization organizations orgs otp out overview owner owners page pages partner partners password
passwords pay payment payments payout payouts pending permission permissions phone photo photos pin ping
plan plans platform player policies policy popular portal post posts preferences preview price prices
pricing private product products profile profiles project projects promo promotion promotions public
publish purchase purchases push query queue quote quotes rate ratings read receipt receipts recent
recommendations record records redeem redirect refresh refund refunds register registration release
releases remove reply report reports repos repository request requests reset resource resources response
rest restore result results review reviews revoke reward rewards role roles root rule rules run runs save
schedule schema scope scopes score search secret secrets section security send server service services
session sessions setting settings setup share shared shipment shipments shipping shop shops sign signin
signout signup site sites size sku skus slot slots snapshot snapshots social source sources spec stage
start stat state static stats status statement statements step stock storage store stores stream
subscribe subscription subscriptions summary support swagger sync system tag tags task tasks team teams
template templates tenant tenants test thread threads ticket tickets time timeline to today token tokens
top topic topics total track tracking transaction transactions transfer transfers trash trend trending
type types unlink unread unsubscribe update updates upload uploads usage user users validate value values
verification verify version versions video videos view views wallet wallets watch webhook webhooks week
well-known widget widgets wishlist workflow workflows workspace workspaces write year me v1 v2 v3 www
by-id by-name bin css js img fonts assets favicon ico png jpg svg json xml html txt robots sitemap
`;

export const ROUTE_WORDS: ReadonlySet<string> = new Set(WORDS.split(/\s+/).filter((w) => w !== ''));
