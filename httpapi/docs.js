// Starts Swagger UI on /docs. A file of its own, not an inline script, so the
// page's Content-Security-Policy can keep script-src 'self'.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",         // no top bar: that needs the standalone preset, not vendored
  deepLinking: true,            // #/default/operationId links
  docExpansion: "list",         // every operation listed, none expanded
  displayOperationId: true,
  validatorUrl: null,           // never call validator.swagger.io
  persistAuthorization: false,  // a pasted token is forgotten on reload, never stored
});
