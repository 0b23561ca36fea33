/**
 * The bundled filters, by the names configurations use (courier-pythonfilter's names). Each is
 * written once on the filter API and runs on every MTA.
 *
 * @packageDocumentation
 */
import type { AnyFilter } from '../filter-api/index.js';
import addHeader from './add-header.js';
import attachments from './attachments.js';
import deliveredto from './deliveredto.js';
import noduplicates from './noduplicates.js';
import whitelistAuth from './whitelist-auth.js';
import whitelistRelayclients from './whitelist-relayclients.js';

export const bundledFilters: Readonly<Record<string, AnyFilter>> = {
  whitelist_auth: whitelistAuth,
  whitelist_relayclients: whitelistRelayclients,
  noduplicates,
  deliveredto,
  attachments,
  add_header: addHeader,
};
