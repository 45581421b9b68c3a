import { LabIcon } from '@jupyterlab/ui-components';

// A plug with a refresh arc: "plugins that reload". The side-bar tab is blank unless the
// title icon is a LabIcon (a CSS class is not enough in JupyterLab 4).
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M9 2h2v5H9zM13 2h2v5h-2zM7 8h10v3a5 5 0 0 1-4 4.9V19h-2v-3.1A5 5 0 0 1 7 11z"/>
    <path d="M18.5 14.5a7 7 0 0 1-6.5 7.5v-2a5 5 0 0 0 4.6-5.1zM19 12l2.5 3.5h-5z"/>
  </g>
</svg>`;

export const flxIcon = new LabIcon({ name: 'flx_ipy:plugins', svgstr });
