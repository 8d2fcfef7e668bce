// The browsable API page (issue 13 item 5): Swagger UI over the server's own OpenAPI document.
// Everything is served by the server itself (no CDN); the document is found relative to this page, so
// the page works behind a reverse proxy that serves the API under a path prefix.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.json", window.location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,             // never send the document to an outside validator
    tryItOutEnabled: true,
    persistAuthorization: false,    // tokens stay in the page's memory, not in localStorage
    defaultModelsExpandDepth: 0,
    docExpansion: "none",
    filter: true,
    requestInterceptor: function (request) {
      if (!request.headers.Accept || request.headers.Accept === "*/*") {
        request.headers.Accept = "application/fhir+json";
      }
      return request;
    }
  });
});
