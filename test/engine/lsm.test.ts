import { engineCompliance } from './compliance.js';

engineCompliance('lsm');
