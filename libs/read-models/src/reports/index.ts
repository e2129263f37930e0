export * from './report-period';
export * from './compliance-report';
export * from './compliance-report.csv';
export * from './compliance-report.html';
export * from './load-compliance-facts';
