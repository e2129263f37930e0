export type CreateStandardTemplate = {
  type: 'CreateStandardTemplate';
  templateId: string;
  name: string;
  description: string;
  procedure: string[];
  systemsScope: string[];
};
export type RetireStandardTemplate = { type: 'RetireStandardTemplate'; reason?: string };

export type StandardTemplateCommand = CreateStandardTemplate | RetireStandardTemplate;
