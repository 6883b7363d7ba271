// What the plugin adds to Orthanc's legacy explorer (/app/explorer.html, jQuery Mobile):
// a button on its home page that opens the status page. Orthanc serves it within
// /plugins/explorer.js (OrthancPluginExtendOrthancExplorer2, called by
// native/plugin_entry.cpp with what "initialize" answers). The URL is relative to
// /app/explorer.html, so it also works behind a prefix.
export const STATUS_PAGE_FROM_EXPLORER = '../plugins/multitenant-dicom/ui/';

export const EXPLORER_EXTENSION = `
$('#lookup').live('pagebeforeshow', function () {
  $('#multitenant-dicom-status').remove();
  var link = $('<a>')
    .attr('id', 'multitenant-dicom-status')
    .attr('href', ${JSON.stringify(STATUS_PAGE_FROM_EXPLORER)})
    .attr('target', '_blank')
    .attr('data-role', 'button')
    .attr('data-icon', 'grid')
    .attr('data-theme', 'e')
    .text('Multitenant DICOM: status of the tenants');
  link.insertAfter($('#lookup-result'));
  link.button();
});
`;
