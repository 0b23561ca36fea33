/** Every fuzz target, in the order the runs go through them. */
import type { FuzzTarget } from '../engine.js';
import { codecCommands, codecReplies } from './codec.js';
import { courierControl, courierMessage, courierRequest } from './courier.js';
import { milterSession } from './milter-session.js';
import { mtaClient } from './mta-client.js';

export const targets: readonly FuzzTarget[] = [codecCommands, codecReplies, milterSession, mtaClient, courierRequest, courierControl, courierMessage];
