/** The attack tools' small word lists (kept short: every run is bounded). */

/** Passwords as they appear in public leak compilations. */
export const LEAKED_PASSWORDS = [
  '123456', 'password', '12345678', 'qwerty', 'iloveyou', 'abc123', 'monkey', 'dragon', 'letmein', 'football',
  'baseball', 'shadow', 'master', 'sunshine', 'princess', 'trustno1', 'superman', 'hello123', 'freedom', 'whatever',
  'qazwsx', 'michael', 'jordan23', 'harley', 'ranger', 'hunter', 'buster', 'soccer', 'batman', 'charlie2',
];

/** What a sprayer tries across every account: few, seasonal, policy-compliant. */
export const SPRAY_PASSWORDS = ['Welcome1', 'Spring2026', 'Password123'];

/** A brute-force list for one account (the victim's real password is not on it). */
export const BRUTE_PASSWORDS = [
  'admin', 'admin123', 'password', 'Password1', 'P@ssw0rd', 'changeme', 'welcome', 'Welcome1', 'letmein', 'qwerty123',
  '123456', '12345678', '123456789', 'secret', 'reports', 'reports2026', 'Reports1', 'company1', 'Company2026', 'Summer2026',
  'Winter2025', 'Autumn2025', 'Spring2026', 'monday1', 'Monday2026', 'iloveyou', 'sunshine', 'princess', 'dragon', 'master',
  'football', 'baseball', 'shadow', 'superman', 'trustno1', 'access', 'login', 'abc123', 'passw0rd', 'p@ssword',
  'root', 'toor', 'guest', 'default', 'test123', 'temp123', 'backup', 'office', 'office2026', 'finance',
  'Finance1', 'helpdesk', 'support', 'Support1', 'manager', 'Manager1', 'qwertyuiop', 'asdfgh', 'zxcvbnm', '1q2w3e4r',
];

/** The takeover list: the victim's (weak) password is inserted into it by the run. */
export const ATO_PASSWORDS = [
  '123456', 'password', '12345678', 'qwerty', '123456789', '12345', '1234567', 'iloveyou', '111111', '123123',
  'abc123', 'qwerty123', '1q2w3e4r', 'admin', 'letmein', 'welcome', 'monkey', 'dragon', 'sunshine', 'princess',
  'Password1', 'Welcome1', 'Summer2023', 'Summer2025', 'Winter2024', 'Spring2024', 'Autumn2024', 'Football12', 'Sunshine2',
  'Welcome12', 'Password12', 'Qwerty123', 'Letmein1', 'Monkey123', 'Dragon123', 'Master123', 'Shadow123', 'Hello123',
  'Freedom1', 'Charlie1', 'Michael1', 'Jordan23', 'Baseball1', 'Superman1', 'Batman123',
];

/** Forced browsing: paths scanners look for. */
export const FORCED_BROWSING_PATHS = [
  'admin', 'admin/', 'admin/login', 'administrator', 'login', 'wp-login.php', 'wp-admin/', 'phpmyadmin/', 'pma/', 'manager/html',
  '.env', '.git/config', '.git/HEAD', '.svn/entries', '.DS_Store', '.htaccess', '.htpasswd', 'config.php', 'config.json', 'config.yml',
  'backup.zip', 'backup.tar.gz', 'backup.sql', 'db.sql', 'dump.sql', 'database.sql', 'site.tar.gz', 'www.zip', 'old/', 'test/',
  'api', 'api/v1', 'api/v2', 'api/v1/users', 'api/v1/admin', 'api/internal', 'api/internal/metrics', 'api/debug', 'api/admin', 'api/users',
  'api/swagger.json', 'swagger.json', 'swagger-ui.html', 'openapi.json', 'v2/api-docs', 'v3/api-docs', 'graphql', 'graphiql', 'api/graphql', 'console',
  'actuator', 'actuator/env', 'actuator/health', 'actuator/heapdump', 'metrics', 'server-status', 'server-info', 'status', 'health', 'healthz',
  'debug', 'debug/pprof', 'trace', 'jmx-console', 'web-console', 'cgi-bin/', 'cgi-bin/test.cgi', 'shell', 'cmd', 'upload',
  'uploads/', 'files/', 'private/', 'internal/', 'export', 'exports/', 'logs/', 'log/', 'error.log', 'access.log',
  'robots.txt', 'sitemap.xml', 'crossdomain.xml', 'security.txt', '.well-known/security.txt', 'readme.html', 'README.md', 'CHANGELOG', 'composer.json', 'package.json',
];
