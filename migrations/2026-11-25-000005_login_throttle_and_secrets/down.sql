DROP TABLE app_secrets;
DROP TABLE login_throttle;
