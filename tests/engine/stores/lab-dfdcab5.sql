PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	sha VARCHAR(64) NOT NULL, 
	message TEXT NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	seed INTEGER NOT NULL, 
	dataset_window VARCHAR(40) NOT NULL, 
	failure_modes JSON NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	PRIMARY KEY (id)
);
INSERT INTO runs VALUES(1,'437c081eb5aba9afd404c4847c564bc042b9e011','made by dfdcab5, failed at data validation','',41,'2025-01-01..2025-06-30','["schema_validation"]','failed',1796599098.5122447013,1796599098.6230795383,1796599098.6230795383);
INSERT INTO runs VALUES(2,'fccdd999b3f0343754cec4dda82e6e1c74c15d9b','made by dfdcab5, CI passed','',42,'2025-01-01..2025-06-30','[]','ci_complete',1796599104.28145051,1796599114.1940646172,1796599114.1940646172);
CREATE TABLE logs (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	step VARCHAR(64) NOT NULL, 
	attempt INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	level VARCHAR(10) NOT NULL, 
	message TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO logs VALUES(1,1,'commit_received',1,1796599098.531507492,'INFO','started commit_received (attempt 1) on vm:11853:eef1d5');
INSERT INTO logs VALUES(2,1,'commit_received',1,1796599098.5340089797,'INFO','commit 437c081eb5aba9afd404c4847c564bc042b9e011 by unknown: ''made by dfdcab5, failed at data validation''');
INSERT INTO logs VALUES(3,1,'commit_received',1,1796599098.5345435142,'INFO','seed 41; dataset window 2025-01-01 .. 2025-06-30 (181 days)');
INSERT INTO logs VALUES(4,1,'commit_received',1,1796599098.5349526405,'WARNING','failure modes on for this run: schema_validation');
INSERT INTO logs VALUES(5,1,'commit_received',1,1796599098.5395326614,'INFO','commit_received succeeded in 0.02 s');
INSERT INTO logs VALUES(6,1,'ci_tests',1,1796599098.5467619895,'INFO','started ci_tests (attempt 1) on vm:11853:eef1d5');
INSERT INTO logs VALUES(7,1,'data_validation',1,1796599098.5519995689,'INFO','started data_validation (attempt 1) on vm:11853:eef1d5');
INSERT INTO logs VALUES(8,1,'ci_tests',1,1796599098.5875401496,'INFO','$ pytest /tmp/old-dfdcab5/engine/steps/ci_tests_suite -q -p no:cacheprovider --no-header -o addopts= -o junit_family=xunit2 --junitxml=/tmp/store-dfdcab5/runs/1/junit-1.xml');
INSERT INTO logs VALUES(9,1,'data_validation',1,1796599098.6041207313,'INFO','validating 40,000 claims, 8 columns');
INSERT INTO logs VALUES(10,1,'data_validation',1,1796599098.6127345561,'ERROR','FAIL required_columns: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO logs VALUES(11,1,'data_validation',1,1796599098.6135849952,'ERROR','FAIL dtypes: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(12,1,'data_validation',1,1796599098.6142652035,'ERROR','FAIL allowed_categories: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(13,1,'data_validation',1,1796599098.6148536205,'INFO','PASS billed_amount_positive');
INSERT INTO logs VALUES(14,1,'data_validation',1,1796599098.6153914927,'INFO','PASS allowed_amount_positive');
INSERT INTO logs VALUES(15,1,'data_validation',1,1796599098.6159052849,'INFO','PASS allowed_within_billed');
INSERT INTO logs VALUES(16,1,'data_validation',1,1796599098.616653204,'INFO','PASS patient_age_range');
INSERT INTO logs VALUES(17,1,'data_validation',1,1796599098.6171696186,'ERROR','FAIL no_nulls: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(18,1,'data_validation',1,1796599098.6176764964,'INFO','PASS unique_claim_id');
INSERT INTO logs VALUES(19,1,'data_validation',1,1796599098.6184353828,'ERROR','data contract violated (4 checks): Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.; Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.; Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.; Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(20,1,'ci_tests',1,1796599102.1241180897,'INFO','......                                                                   [100%]');
INSERT INTO logs VALUES(21,1,'ci_tests',1,1796599102.1251232624,'INFO','6 passed in 1.89s');
INSERT INTO logs VALUES(22,1,'ci_tests',1,1796599102.1764936446,'INFO','ruff: 0 issue(s) in engine/ml');
INSERT INTO logs VALUES(23,1,'ci_tests',1,1796599102.1786236762,'INFO','ci_tests succeeded in 3.64 s');
INSERT INTO logs VALUES(24,2,'commit_received',1,1796599104.3007764816,'INFO','started commit_received (attempt 1) on vm:11934:7e2c36');
INSERT INTO logs VALUES(25,2,'commit_received',1,1796599104.3044285774,'INFO','commit fccdd999b3f0343754cec4dda82e6e1c74c15d9b by unknown: ''made by dfdcab5, CI passed''');
INSERT INTO logs VALUES(26,2,'commit_received',1,1796599104.3052039147,'INFO','seed 42; dataset window 2025-01-01 .. 2025-06-30 (181 days)');
INSERT INTO logs VALUES(27,2,'commit_received',1,1796599104.3115665912,'INFO','commit_received succeeded in 0.02 s');
INSERT INTO logs VALUES(28,2,'ci_tests',1,1796599104.3210346699,'INFO','started ci_tests (attempt 1) on vm:11934:7e2c36');
INSERT INTO logs VALUES(29,2,'data_validation',1,1796599104.3257408142,'INFO','started data_validation (attempt 1) on vm:11934:7e2c36');
INSERT INTO logs VALUES(30,2,'ci_tests',1,1796599104.360178709,'INFO','$ pytest /tmp/old-dfdcab5/engine/steps/ci_tests_suite -q -p no:cacheprovider --no-header -o addopts= -o junit_family=xunit2 --junitxml=/tmp/store-dfdcab5/runs/2/junit-1.xml');
INSERT INTO logs VALUES(31,2,'data_validation',1,1796599104.3729925155,'INFO','validating 40,000 claims, 9 columns');
INSERT INTO logs VALUES(32,2,'data_validation',1,1796599104.3825845717,'INFO','PASS required_columns');
INSERT INTO logs VALUES(33,2,'data_validation',1,1796599104.3834171295,'INFO','PASS dtypes');
INSERT INTO logs VALUES(34,2,'data_validation',1,1796599104.3840212822,'INFO','PASS allowed_categories');
INSERT INTO logs VALUES(35,2,'data_validation',1,1796599104.3848364353,'INFO','PASS billed_amount_positive');
INSERT INTO logs VALUES(36,2,'data_validation',1,1796599104.3854534625,'INFO','PASS allowed_amount_positive');
INSERT INTO logs VALUES(37,2,'data_validation',1,1796599104.3860008716,'INFO','PASS allowed_within_billed');
INSERT INTO logs VALUES(38,2,'data_validation',1,1796599104.3866055012,'INFO','PASS patient_age_range');
INSERT INTO logs VALUES(39,2,'data_validation',1,1796599104.3871796131,'INFO','PASS no_nulls');
INSERT INTO logs VALUES(40,2,'data_validation',1,1796599104.3877723216,'INFO','PASS unique_claim_id');
INSERT INTO logs VALUES(41,2,'data_validation',1,1796599104.3925685882,'INFO','data_validation succeeded in 0.07 s');
INSERT INTO logs VALUES(42,2,'ci_quick_train',1,1796599104.3983924388,'INFO','started ci_quick_train (attempt 1) on vm:11934:7e2c36');
INSERT INTO logs VALUES(43,2,'ci_quick_train',1,1796599105.7939739227,'INFO','training {''n_estimators'': 20, ''max_leaf_nodes'': 128, ''max_features'': 4, ''min_samples_leaf'': 10, ''max_samples'': 0.5, ''n_jobs'': 2} on 6,000 claims; holdout 2,000');
INSERT INTO logs VALUES(44,2,'ci_quick_train',1,1796599106.0358028411,'INFO','fit in 0.19 s; ROC-AUC 0.8910, F1 0.8836');
INSERT INTO logs VALUES(45,2,'ci_quick_train',1,1796599106.0386638641,'INFO','ci_quick_train succeeded in 1.64 s');
INSERT INTO logs VALUES(46,2,'ci_tests',1,1796599108.7502386569,'INFO','......                                                                   [100%]');
INSERT INTO logs VALUES(47,2,'ci_tests',1,1796599108.7515144348,'INFO','6 passed in 2.60s');
INSERT INTO logs VALUES(48,2,'ci_tests',1,1796599108.8052389621,'INFO','ruff: 0 issue(s) in engine/ml');
INSERT INTO logs VALUES(49,2,'ci_tests',1,1796599108.8096790313,'INFO','ci_tests succeeded in 4.49 s');
INSERT INTO logs VALUES(50,2,'mlflow_log_ci',1,1796599108.8183367251,'INFO','started mlflow_log_ci (attempt 1) on vm:11934:7e2c36');
INSERT INTO logs VALUES(51,2,'mlflow_log_ci',1,1796599113.0497398376,'INFO','logging to MLflow at sqlite:////tmp/store-dfdcab5/mlflow.db');
INSERT INTO logs VALUES(52,2,'mlflow_log_ci',1,1796599114.1921737193,'INFO','MLflow run adcdb04231324eaf9502b762a9a6c3a0: 7 metrics, dataset digest 773c781d');
INSERT INTO logs VALUES(53,2,'mlflow_log_ci',1,1796599114.1949837207,'INFO','mlflow_log_ci succeeded in 5.38 s');
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	actor VARCHAR(200) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	run_id INTEGER, 
	comment TEXT NOT NULL, 
	detail JSON, 
	PRIMARY KEY (id)
);
INSERT INTO audit VALUES(1,1796599097.5582916736,'cli','failure_mode',NULL,'schema_validation on','{"mode": "schema_validation", "enabled": true}');
INSERT INTO audit VALUES(2,1796599098.516520977,'cli','commit',1,'made by dfdcab5, failed at data validation','{"sha": "437c081eb5aba9afd404c4847c564bc042b9e011", "seed": 41, "window": "2025-01-01..2025-06-30", "failure_modes": ["schema_validation"]}');
INSERT INTO audit VALUES(3,1796599103.2135004997,'cli','failure_mode',NULL,'schema_validation off','{"mode": "schema_validation", "enabled": false}');
INSERT INTO audit VALUES(4,1796599104.2859234809,'cli','commit',2,'made by dfdcab5, CI passed','{"sha": "fccdd999b3f0343754cec4dda82e6e1c74c15d9b", "seed": 42, "window": "2025-01-01..2025-06-30", "failure_modes": []}');
CREATE TABLE failure_modes (
	name VARCHAR(40) NOT NULL, 
	enabled BOOLEAN NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO failure_modes VALUES('schema_validation',0,1796599103.2120816708);
CREATE TABLE alias_history (
	id INTEGER NOT NULL, 
	alias VARCHAR(40) NOT NULL, 
	version INTEGER NOT NULL, 
	run_id INTEGER, 
	since FLOAT NOT NULL, 
	until FLOAT, 
	action VARCHAR(20) NOT NULL, 
	moved_by VARCHAR(200) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE steps (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	position INTEGER NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	attempt INTEGER NOT NULL, 
	queued_at FLOAT, 
	started_at FLOAT, 
	finished_at FLOAT, 
	heartbeat_at FLOAT, 
	worker VARCHAR(120), 
	outputs JSON, 
	error TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_steps_run_name UNIQUE (run_id, name), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
INSERT INTO steps VALUES(1,1,'commit_received',0,'CI','succeeded',1,1796599098.5122447013,1796599098.5177412033,1796599098.5352339744,1796599098.5177412033,'vm:11853:eef1d5','{"sha": "437c081eb5aba9afd404c4847c564bc042b9e011", "message": "made by dfdcab5, failed at data validation", "author": "", "seed": 41, "dataset_window": "2025-01-01..2025-06-30", "window_days": 181, "failure_modes": ["schema_validation"]}',NULL);
INSERT INTO steps VALUES(2,1,'ci_tests',1,'CI','succeeded',1,1796599098.5381970405,1796599098.5400998591,1796599102.1772415637,1796599101.5494816303,'vm:11853:eef1d5','{"tests": [{"name": "test_contract::test_generated_claims_pass_the_contract", "outcome": "passed", "duration": 0.015, "message": ""}, {"name": "test_contract::test_missing_column_is_named", "outcome": "passed", "duration": 0.007, "message": ""}, {"name": "test_contract::test_allowed_above_billed_is_caught", "outcome": "passed", "duration": 0.006, "message": ""}, {"name": "test_generator::test_same_seed_same_frame", "outcome": "passed", "duration": 0.025, "message": ""}, {"name": "test_generator::test_invariants", "outcome": "passed", "duration": 0.028, "message": ""}, {"name": "test_training::test_model_fits_the_run_sample", "outcome": "passed", "duration": 0.103, "message": ""}], "passed": 6, "failed": 0, "skipped": 0, "duration_seconds": 0.184, "exit_code": 0, "sample_rows": 2000, "lint": {"tool": "ruff", "issues": [], "exit_code": 0}}',NULL);
INSERT INTO steps VALUES(3,1,'data_validation',2,'CI','failed',1,1796599098.5390763283,1796599098.5422837733,1796599098.6218862533,1796599098.5422837733,'vm:11853:eef1d5','{"passed": false, "n_rows": 40000, "checks": [{"name": "required_columns", "passed": false, "failing_rows": 40000, "examples": ["missing column: diagnosis_group"], "detail": "Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored."}, {"name": "dtypes", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "allowed_categories", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "billed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_within_billed", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "patient_age_range", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "no_nulls", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "unique_claim_id", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}]}','data contract violated (4 checks): Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.; Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.; Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.; Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO steps VALUES(4,1,'ci_quick_train',3,'CI','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(5,1,'mlflow_log_ci',4,'CI','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(6,1,'cd_full_train',5,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(7,1,'evaluate_vs_champion',6,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(8,1,'manual_approval',7,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(9,1,'deploy_staging',8,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(10,1,'shadow_monitor',9,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(11,1,'promote_prod',10,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(12,2,'commit_received',0,'CI','succeeded',1,1796599104.28145051,1796599104.2871711254,1796599104.3056876659,1796599104.2871711254,'vm:11934:7e2c36','{"sha": "fccdd999b3f0343754cec4dda82e6e1c74c15d9b", "message": "made by dfdcab5, CI passed", "author": "", "seed": 42, "dataset_window": "2025-01-01..2025-06-30", "window_days": 181, "failure_modes": []}',NULL);
INSERT INTO steps VALUES(13,2,'ci_tests',1,'CI','succeeded',1,1796599104.3097512721,1796599104.3121712207,1796599108.8061549663,1796599108.329750061,'vm:11934:7e2c36','{"tests": [{"name": "test_contract::test_generated_claims_pass_the_contract", "outcome": "passed", "duration": 0.013, "message": ""}, {"name": "test_contract::test_missing_column_is_named", "outcome": "passed", "duration": 0.007, "message": ""}, {"name": "test_contract::test_allowed_above_billed_is_caught", "outcome": "passed", "duration": 0.007, "message": ""}, {"name": "test_generator::test_same_seed_same_frame", "outcome": "passed", "duration": 0.025, "message": ""}, {"name": "test_generator::test_invariants", "outcome": "passed", "duration": 0.036, "message": ""}, {"name": "test_training::test_model_fits_the_run_sample", "outcome": "passed", "duration": 0.112, "message": ""}], "passed": 6, "failed": 0, "skipped": 0, "duration_seconds": 0.2, "exit_code": 0, "sample_rows": 2000, "lint": {"tool": "ruff", "issues": [], "exit_code": 0}}',NULL);
INSERT INTO steps VALUES(14,2,'data_validation',2,'CI','succeeded',1,1796599104.3109707831,1796599104.3152356147,1796599104.3892884254,1796599104.3152356147,'vm:11934:7e2c36','{"passed": true, "n_rows": 40000, "checks": [{"name": "required_columns", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "dtypes", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_categories", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "billed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_within_billed", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "patient_age_range", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "no_nulls", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "unique_claim_id", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}]}',NULL);
INSERT INTO steps VALUES(15,2,'ci_quick_train',3,'CI','succeeded',1,1796599104.3917694091,1796599104.3932869434,1796599106.0369446277,1796599105.3987729548,'vm:11934:7e2c36','{"metrics": {"n_rows": 2000, "accuracy": 0.8295, "precision": 0.8496, "recall": 0.9203, "f1": 0.8836, "roc_auc": 0.891, "false_denial_rate": 0.0797, "confusion_matrix": {"labels": ["Approved", "Denied"], "matrix": [[1294, 112], [229, 365]], "actual_Approved": {"predicted_Approved": 1294, "predicted_Denied": 112}, "actual_Denied": {"predicted_Approved": 229, "predicted_Denied": 365}}}, "params": {"n_estimators": 20, "max_leaf_nodes": 128, "max_features": 4, "min_samples_leaf": 10, "max_samples": 0.5, "n_jobs": 2}, "train_rows": 6000, "holdout_rows": 2000, "fit_seconds": 0.192}',NULL);
INSERT INTO steps VALUES(16,2,'mlflow_log_ci',4,'CI','succeeded',1,1796599108.8089206218,1796599108.8103666305,1796599114.1932001113,1796599113.8449175357,'vm:11934:7e2c36','{"mlflow_run_id": "adcdb04231324eaf9502b762a9a6c3a0", "experiment": "claims-settlement", "tracking_uri": "sqlite:////tmp/store-dfdcab5/mlflow.db", "dataset_digest": "773c781d", "tags": {"commit_sha": "fccdd999b3f0343754cec4dda82e6e1c74c15d9b", "stage": "CI", "dataset_window": "2025-01-01..2025-06-30", "seed": "42", "model_version": "", "pipeline_run_id": "2"}}',NULL);
INSERT INTO steps VALUES(17,2,'cd_full_train',5,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(18,2,'evaluate_vs_champion',6,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(19,2,'manual_approval',7,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(20,2,'deploy_staging',8,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(21,2,'shadow_monitor',9,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(22,2,'promote_prod',10,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE INDEX ix_runs_created ON runs (created_at);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_logs_run_step_id ON logs (run_id, step, id);
CREATE INDEX ix_audit_ts ON audit (ts);
CREATE INDEX ix_alias_history ON alias_history (alias, since);
CREATE INDEX ix_steps_status_queued ON steps (status, queued_at);
CREATE INDEX ix_steps_run ON steps (run_id, position);
COMMIT;
