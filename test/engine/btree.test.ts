import { engineCompliance } from './compliance.js';

engineCompliance('btree');
