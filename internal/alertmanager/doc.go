// Package alertmanager receives Prometheus Alertmanager's webhook
// notifications (POST /webhooks/alertmanager) and turns each into the
// domain's alert-group notification (incident.AlertNotification).
//
// Alertmanager does not sign bodies; a delivery is authenticated by the
// bearer token its receiver's http_config.authorization sends, compared in
// constant time with every configured token (several during a rotation).
// An accepted delivery is stored durably, as a job keyed by its alert
// group, before the 2xx answer, so a crash loses nothing and the
// notifications of one group are applied in the order they arrived. The
// domain compares each notification with the group's known state, so
// Alertmanager's re-sends (every group_interval while the group changes,
// every repeat_interval while it does not) change nothing.
package alertmanager
